"""Probe (issue 23): a cross-site prior in a site's own learned ranking, measured under the `new` and `existing`
protocols exactly as `evaluate`'s `learned, ... (5-fold CV)` rows are made.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_prior.py --corpus NAME=INDEX=GOLD \
        --donor CACHE.npz [--donor ...] [--variants base,stack,p01,r01] [--protocols new,existing] [--seed 0]

The site's rows are `training.TrainingSet`'s (the default ranking's candidates, the pair signals, each protocol's
fold views) and the scores are `training.nested_scores`' (5 folds, the objective chosen inside each fold), then
ordered by `linking.order_candidates` under the evaluation policy: with the `base` variant the figures equal
`evaluate`'s. The nested choice is given more "objectives" to choose from (`training.fit` and `training.OBJECTIVES`
are replaced for the run):

* `pointwise`, `listwise`: today's fits (`objectives.fit`), unchanged;
* `pwP:lam`, `lwP:lam` (a prior): the site's fit pulled towards a prior instead of towards zero, penalty
  lam/2 |w - w0|^2 (pointwise: on the mean balanced log loss, intercept free; listwise: in place of the listwise
  loss's own penalty, then calibrated as today). w0 is fitted once on the donors' curated pairs (every donor row,
  each donor corpus weighing the same; pointwise: balanced per corpus and class; listwise: penalty 0.1) over the 15
  list-free pair signals, taken to raw units and then to the site's standardisation; its graph weights are 0;
* `pwR:lam`: the control, the same pointwise fit pulled towards zero (is it the prior or only the penalty?);
* `pwB:a`, `lwB:a` (pooled): the donors' candidate pairs (300 queries of each donor corpus, seeded) added to the
  site's fit, weighing `a` times the site's rows in all (each donor corpus the same), in the site's standardisation,
  their graph columns at the site's mean (0 once standardised: they move no graph weight); the score is calibrated
  on the site's rows;
* column set `stack`: the leave-one-corpus-out transferable default's score (the shipped configuration, listwise,
  standardised per query, penalty 3, fitted on the donors only) as one more column; `stacksel` lets the folds
  choose with it or without it (`pointwise~`, `listwise~`: today's fits, the column held at 0).

Donors: `scripts/measure_transfer.py --cache` files (transfer.CorpusData, one per corpus; at most 2,000 queries of
each are read, seeded as the transfer samples them). A donor with the evaluated corpus's name is skipped, so the
prior never saw the evaluated site's lists. Nothing is written but --out (JSON of every row). Figures:
docs/ranking.md, "A cross-site prior in the site's own fit".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from recommender import Index
from recommender.evaluate import objectives, training
from recommender.evaluate.gold import load_gold_jsonl
from recommender.evaluate.metrics import gold_in_index
from recommender.evaluate.objectives import _calibrated, groups, listwise_loss, standardise
from recommender.evaluate.training import TrainingSet, nested_scores, ranks_in, rows_by_query, summarise
from recommender.evaluate.transfer import Config, CorpusData, _sample, fit_default
from recommender.rank.default_model import load_default_model, query_features
from recommender.rank.learned import ALL_SIGNALS, LearnedModel
from recommender.rank.linking import order_candidates
from recommender.rank.policy import TARGETS, Policy
from recommender.rank.ranking import Candidates
from recommender.rank.signaltable import SIGNALS

BASE = len(SIGNALS)
ORIGINAL_FIT = objectives.fit
ORIGINAL_CV = training.cv_scores
POOL_QUERIES = 300  # donor queries of each corpus in a pooled fit (seeded)

VARIANTS = {  # name: (column set, the objectives the nested cross-validation chooses among)
    "base": ("base", ("pointwise", "listwise")),
    "stack": ("stack", ("pointwise", "listwise")),
    "prior": ("base", ("pointwise", "listwise", "pwP:0.01", "pwP:0.1", "pwP:1", "lwP:0.1", "lwP:1", "lwP:3")),
    "prior2": ("base", ("pointwise", "listwise", "pwP:0.003", "pwP:0.01", "pwP:0.03")),
    "ctrl": ("base", ("pointwise", "listwise", "pwR:0.003", "pwR:0.01", "pwR:0.03")),
    "p01": ("base", ("pointwise", "listwise", "pwP:0.01")),
    "r01": ("base", ("pointwise", "listwise", "pwR:0.01")),
    "pool": ("base", ("pointwise", "listwise", "pwB:0.25", "pwB:1", "lwB:0.25", "lwB:1")),
    "b25": ("base", ("pointwise", "listwise", "pwB:0.25")),
    "stacksel": ("stack", ("pointwise~", "listwise~", "pointwise", "listwise")),  # stacked or not, chosen per fold
}


def sampled(data: CorpusData) -> CorpusData:
    """The donor cut to the queries the transfer fits on (transfer._sample)."""
    blocks = _sample(data)
    parts = [np.arange(data.starts[q], data.starts[q + 1]) for q in blocks]
    rows = np.concatenate(parts)
    starts = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return CorpusData(data.name, data.X[rows], data.y[rows], data.rows[rows], data.fixed[rows], starts,
                      data.wanted[blocks], data.baselines)


class Donors:
    """The other corpora's curated pairs: every row (the prior's fit, the LOCO default) and a pooled sample."""

    def __init__(self, paths: list[Path], skip: str):
        self.corpora = [sampled(CorpusData.load(p)) for p in paths]
        self.corpora = [d for d in self.corpora if d.name != skip]
        rng = np.random.default_rng(0)
        parts, pooled = [], []
        for c, data in enumerate(self.corpora):
            query = -(c * 10_000_000 + np.repeat(np.arange(data.queries), np.diff(data.starts))) - 1
            parts.append((data.X, data.y, query, np.full(len(data.y), c)))
            pick = np.sort(rng.choice(data.queries, min(POOL_QUERIES, data.queries), replace=False))
            rows = np.concatenate([np.arange(data.starts[b], data.starts[b + 1]) for b in pick])
            pooled.append((data.X[rows], data.y[rows], query[rows], np.full(len(rows), c)))
        self.X, self.y, self.q, self.c = _join(parts)
        self.Xp, self.yp, self.qp, self.cp = _join(pooled)
        self.raw = {}

    def loco_model(self):
        """The transferable default in its shipped configuration, fitted on the donors only."""
        shipped = load_default_model()
        return fit_default(self.corpora, Config(signals=tuple(shipped.signals), normalise=shipped.normalise,
                                                penalty=3.0))

    def prior(self, kind: str) -> np.ndarray:
        """The prior's weights on the raw pair signals ("pw" pointwise, "lw" listwise), fitted once."""
        if kind not in self.raw:
            mean, scale = standardise(self.X)
            Z = (self.X - mean) / scale
            if kind == "pw":
                w, _ = weighted_logistic(Z, self.y, class_weights(self.y, self.c, 1.0), 1e-4)
            else:
                w = listwise(Z, self.y, self.q, np.zeros(len(self.y)), objectives.LISTWISE_PENALTY,
                             np.zeros(Z.shape[1]), query_weights(self.q, self.c, self.y, 1.0))
            self.raw[kind] = w / scale
            print(f"prior {kind} (per deviation over the donors):",
                  ", ".join(f"{n} {v:+.3f}" for n, v in zip(SIGNALS, w)), flush=True)
        return self.raw[kind]


def _join(parts):
    X, y, q, c = zip(*parts)
    return np.vstack(X).astype(np.float64), np.concatenate(y), np.concatenate(q), np.concatenate(c)


def class_weights(y, corpus, total) -> np.ndarray:
    """Row weights: each corpus total / corpora, half of it to each class."""
    w = np.zeros(len(y))
    names = np.unique(corpus)
    for c in names:
        for label in (True, False):
            where = (corpus == c) & (y == label)
            if where.any():
                w[where] = total / len(names) / 2 / where.sum()
    return w


def query_weights(q, corpus, y, total) -> dict:
    """Query -> weight: each corpus total / corpora, spread over its queries with links (0 for the others)."""
    out = {int(k): 0.0 for k in np.unique(q)}
    names = np.unique(corpus)
    for c in names:
        linked = np.unique(q[(corpus == c) & y])
        out.update({int(k): total / len(names) / len(linked) for k in linked})
    return out


def weighted_logistic(Z, y, weight, lam, w0=None):
    """argmin sum(weight * log loss) / sum(weight) + lam/2 |w - w0|^2, intercept free: (w, intercept)."""
    d = Z.shape[1]
    w0 = np.zeros(d) if w0 is None else w0
    weight = weight / weight.sum()
    t = y.astype(np.float64)

    def loss(p):
        w, b = p[:d], p[d]
        s = Z @ w + b
        r = weight * (1 / (1 + np.exp(-s)) - t)
        value = weight @ (np.logaddexp(0, s) - t * s) + 0.5 * lam * ((w - w0) @ (w - w0))
        return value, np.append(Z.T @ r + lam * (w - w0), r.sum())

    p = minimize(loss, np.append(w0, 0.0), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    return p[:d], float(p[d])


def listwise(Z, y, q, offset, penalty, w0, query_weight=None):
    """objectives.listwise_weights pulled towards w0: argmin listwise_loss(w) + penalty/2 |w - w0|^2."""
    order, starts = groups(q)
    Zq = np.ascontiguousarray(Z[order], dtype=np.float64)
    yq, oq = y[order], offset[order]
    weights = None if query_weight is None else np.array([query_weight[int(k)] for k in q[order][starts[:-1]]])

    def loss(v):
        value, grad = listwise_loss(w0 + v, Zq, yq, starts, oq, 0.0, weights)
        return value + 0.5 * penalty * (v @ v), grad + penalty * v

    return w0 + minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B").x


DONORS: Donors | None = None


def fit(X, y, qs, objective="pointwise", negative_rate=1.0, C=1.0) -> LearnedModel:
    """training.fit for the run: today's objectives as they are, the prior's and the pooled ones as above."""
    if objective in objectives.OBJECTIVES:
        return ORIGINAL_FIT(X, y, qs, objective, negative_rate=negative_rate, C=C)
    if objective.endswith("~"):  # today's fit without the stacked column, which follows the pair signals (the
        X = X.copy()               # fold view's graph columns come after it): held at 0, its weight stays 0
        X[:, BASE] = 0.0
        return ORIGINAL_FIT(X, y, qs, objective[:-1], negative_rate=negative_rate, C=C)
    kind, value = objective.split(":")
    value = float(value)
    if len(y) > objectives.MAX_FIT_ROWS:
        chosen, rate = objectives.fit_rows(y)
        X, y, qs, negative_rate = X[chosen], y[chosen], qs[chosen], negative_rate * rate
    mean, scale = standardise(X)
    Z = (X - mean) / scale
    d = X.shape[1]
    site = class_weights(y, np.zeros(len(y)), 1.0)
    offset = np.where(y, 0.0, -np.log(negative_rate))
    if kind in ("pwP", "lwP", "pwR"):
        w0 = np.zeros(d)
        if kind != "pwR":
            w0[:BASE] = DONORS.prior(kind[:2]) * scale[:BASE]
        if kind == "lwP":
            coef, intercept = _calibrated(Z, y, listwise(Z, y, qs, offset, value, w0))
        else:
            coef, intercept = weighted_logistic(Z, y, site, value, w0)
    elif kind in ("pwB", "lwB"):
        Zd = np.zeros((len(DONORS.yp), d))
        Zd[:, :BASE] = (DONORS.Xp - mean[:BASE]) / scale[:BASE]
        Z_all, y_all = np.vstack([Z, Zd]), np.concatenate([y, DONORS.yp])
        if kind == "pwB":
            weight = np.concatenate([site, class_weights(DONORS.yp, DONORS.cp, value)])
            coef, _ = weighted_logistic(Z_all, y_all, weight, 1.0 / len(y))
        else:
            weight = {int(k): 1.0 for k in np.unique(qs)}
            weight.update(query_weights(DONORS.qp, DONORS.cp, DONORS.yp, value * len(np.unique(qs[y]))))
            coef = listwise(Z_all, y_all, np.concatenate([qs, DONORS.qp]),
                            np.concatenate([offset, np.zeros(len(DONORS.yp))]), objectives.LISTWISE_PENALTY,
                            np.zeros(d), weight)
        coef, intercept = _calibrated(Z, y, coef)  # the site's own calibration (the order is the pooled fit's)
    else:
        raise ValueError(f"unknown objective {objective!r}")
    return LearnedModel(signals=list(ALL_SIGNALS[:d]), mean=mean.tolist(), scale=scale.tolist(),
                        coef=np.asarray(coef, dtype=float).tolist(), intercept=float(intercept), objective=objective)


class Figures:
    """A TrainingSet's scores as `evaluate` counts them: within the default ranking's candidates, and ordered by
    the link policy (`linking.order_candidates`, as the learned rows are)."""

    def __init__(self, index, data: TrainingSet, gold: dict, policy: Policy):
        self.gold, self.policy = gold, policy
        self.by_query = rows_by_query(data.qs)
        self.default_rows = {q: c.rows for q, c in data.cands.items()}
        self.facts, self.vectors = index.data.rule_columns(), index.ranker(policy, learned=False).vectors

    def within(self, scores: np.ndarray) -> dict:
        return summarise({q: ranks_in(self.default_rows[q], scores[w], self.gold[q])
                          for q, w in self.by_query.items()}, self.gold)

    def after_policy(self, scores: np.ndarray) -> dict:
        ranks = {}
        for q, w in self.by_query.items():
            rows, s = self.default_rows[q], scores[w].astype(np.float64)
            o = np.lexsort((rows, -s))
            ordered = order_candidates(Candidates(int(q), rows[o], s[o], {}, {}), self.facts, self.vectors,
                                       self.policy)
            position = {link.row: i + 1 for i, link in enumerate(ordered)}
            ranks[q] = [float(position.get(g, np.inf)) for g in self.gold[q]]
        return summarise(ranks, self.gold)


class MemoView:
    """A fold view that computes each held-out set's graph columns once for every variant of the run."""

    def __init__(self, view):
        self.view, self.cache = view, {}

    def __call__(self, held):
        key = frozenset(int(q) for q in held)
        if key not in self.cache:
            self.cache[key] = self.view(held)
        return self.cache[key]


OUTER: dict = {}


def cv_scores(*args, **kwargs):
    """training.cv_scores, keeping the outer folds' scores of every objective (their un-nested figures)."""
    OUTER["last"] = ORIGINAL_CV(*args, **kwargs)
    return OUTER["last"]


def main() -> None:
    global DONORS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="NAME=INDEX=GOLD")
    parser.add_argument("--donor", action="append", type=Path, required=True,
                        help="a measure_transfer.py cache file (.npz); the evaluated corpus's own is skipped")
    parser.add_argument("--variants", default="base,stack,p01,r01")
    parser.add_argument("--protocols", default="new,existing")
    parser.add_argument("--seed", type=int, default=0, help="the fold seed")
    parser.add_argument("--out", type=Path, help="write every row's figures here (JSON)")
    args = parser.parse_args()
    name, index_dir, gold_path = args.corpus.split("=", 2)
    timer = time.time()
    DONORS = Donors(args.donor, name)
    print(name, "donors", [d.name for d in DONORS.corpora], len(DONORS.y), "pairs,", len(DONORS.yp), "pooled",
          flush=True)
    training.fit, training.cv_scores = fit, cv_scores
    index = Index.open(index_dir)
    policy = Policy().with_links(targets=TARGETS)
    row_of = {x: i for i, x in enumerate(index.data.store.ids())}
    kept, _ = gold_in_index(load_gold_jsonl(gold_path), row_of)
    gold = {row_of[q]: [row_of[g] for g in r] for q, r in kept.items()}
    data = TrainingSet(index, policy, gold)
    qs = data.qs
    starts = np.append(np.flatnonzero(np.r_[True, qs[1:] != qs[:-1]]), len(qs))
    loco = DONORS.loco_model()
    stacked = (query_features(data.X, loco.signals, loco.normalise, starts) @ np.asarray(loco.coef)).astype(np.float32)
    columns = {"base": data.X, "stack": np.hstack([data.X, stacked[:, None]])}
    figures = Figures(index, data, gold, policy)
    default_rows, within, after_policy = figures.default_rows, figures.within, figures.after_policy
    loco_figures = within(stacked)
    print(f"{name}: {len(gold)} queries, {len(data.y)} pairs ({time.time() - timer:.0f} s); LOCO transferable "
          f"default within the candidates {loco_figures['recall@10']:.4f} / {loco_figures['mrr']:.4f}", flush=True)
    out = {"corpus": name, "seed": args.seed, "loco": loco_figures, "rows": {}}
    for protocol in args.protocols.split(","):
        view = MemoView(data.view(protocol))
        for variant in args.variants.split(","):
            column_set, training.OBJECTIVES = VARIANTS[variant]
            scores, _, chosen, _ = nested_scores(columns[column_set], data.y, qs, default_rows, gold, 5, args.seed,
                                                 view)
            row = {"policy": after_policy(scores), "within": within(scores), "chosen": chosen,
                   "un-nested": {k: within(s) for k, s in OUTER["last"][0].items()}}
            out["rows"][f"{protocol}:{variant}"] = row
            print(f"{name} seed {args.seed} {protocol:8s} {variant:7s} recall@10 / MRR {row['policy']['recall@10']:.4f}"
                  f" / {row['policy']['mrr']:.4f} (within the candidates {row['within']['recall@10']:.4f}); folds "
                  f"chose {chosen} ({time.time() - timer:.0f} s)", flush=True)
            print("    un-nested: " + ", ".join(f"{k} {x['recall@10']:.4f} / {x['mrr']:.4f}"
                                                for k, x in row["un-nested"].items()), flush=True)
            if args.out:
                args.out.write_text(json.dumps(out, indent=1))
        view.cache.clear()


if __name__ == "__main__":
    main()
