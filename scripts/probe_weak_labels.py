"""Probe (issue 23): a site without curated lists learns its own ranking from weak labels it already has, the
mention graph (article a's text names article b's title: `LexicalIndex.mentions`), and the result is measured
against the CURATED lists, which take no part in it.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_weak_labels.py \
        --corpus python_docs=INDEX=GOLD [--corpus ...] --loco-cache DIR

For each corpus:

* overlap of the weak labels with the curated gold, over the curated queries: the share of curated links the weak
  list holds (recall) and the share of weak links that are curated (precision), for each kind of weak list:
  `out` (the articles the query's text names), `in` (the articles whose text names the query), `both`, `mutual`
  (each names the other; none on netlify_blog), `out3` / `both3` / `out1` / `both1` (only the 3 or 1 strongest by mention weight, in
  each direction);
* the weak training set: every article with a non-empty weak list of any kind (at most --train-queries of them,
  seeded; each kind trains on those with a list of its kind), its candidates and signals collected exactly as `recommender train` collects a curated query's
  (`training.collect`: the fixed default ranking's candidates, `signals.pair_signals`), the weak links as
  positives;
* variants fitted on it, each ranking the curated queries within the same candidates (before the link policy's
  steps, as `recommender train` and `scripts/measure_transfer.py` report):
  - `weak-T`: the shipped transferable default's configuration (its signals, standardised per query, listwise,
    penalty 3: `transfer.fit_default`) fitted on the weak lists; `-nomention`: without the mention z-score, which
    the `both` labels are a function of (mention_z > 0 exactly when a names b or b names a);
  - `weak-L pointwise` / `weak-L listwise`: the site-standardised learned ranking (`objectives.fit`) over the 15
    pair signals; `-nomention`: the mention column zeroed in training and use;
  - `blend a LOCO`: a x the leave-one-corpus-out transferable default's score + (1 - a) x weak-T's (same
    features, both standardised per query, so the scores are on one scale); `blend a fixed`: a x the fixed
    default's score + (1 - a) x weak-T's, each standardised over the query's candidates;
  - `LOCO corpora + weak lists`: the transferable default fitted on the other corpora's curated lists and this
    site's weak lists, as one more corpus weighing the same;
  - `prior-pulled lam`: weak-T's fit pulled towards the LOCO default's weights (L2 on the difference, weight
    lam) instead of towards zero; `-mention held`: the mention z-score keeps the prior's weight;
* beside them, on the same candidates: the fixed default (the candidates' order), the shipped transferable default
  (in-sample: it was fitted on all four corpora), the transferable default leave-one-corpus-out (fitted on the
  other corpora of --loco-cache, `measure_transfer.py`'s cached .npz, read only), and TF-IDF and BM25 over the
  whole corpus (`evaluate_index`, the same queries). The ratio is recall@10 over the best lexical baseline's.

Nothing is written. Figures: docs/ranking.md ("Weak labels: a site's own mention graph as training lists").
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from recommender import Index
from recommender.evaluate.gold import load_gold_jsonl
from recommender.evaluate.metrics import gold_in_index
from recommender.evaluate.objectives import MAX_FIT_ROWS, fit, fit_rows
from recommender.evaluate.training import collect
from recommender.evaluate.transfer import (Config, CorpusData, collect_corpus, corpus_data, figures, fit_default,
                                           score_corpus)
from recommender.rank.default_model import DefaultModel, query_features, shipped_model
from recommender.rank.policy import Policy
from recommender.rank.signaltable import SIGNALS

KINDS = ("out", "in", "both", "mutual", "out3", "both3", "out1", "both1")
MENTION = SIGNALS.index("mention_z")
BLENDS = (0.25, 0.5, 0.75)
PRIOR_PULL = (1.0, 3.0, 10.0, 30.0)
WEIGHTS: dict[str, dict] = {}  # weak-T weights by corpus and variant, printed at the end


def weak_lists(lexical, kind: str) -> dict[int, list[int]]:
    """Row -> the rows its weak list holds: the articles its text names (out), that name it (in), either (both),
    both ways at once (mutual); `outK` / `bothK`: only the K strongest by mention weight (each direction)."""
    M = lexical.mentions.tocsr()
    T = M.T.tocsr()
    base = kind.rstrip("0123456789")
    top = int(kind[len(base):] or 0)

    def strongest(matrix, a):
        cols = matrix.indices[matrix.indptr[a]:matrix.indptr[a + 1]]
        vals = matrix.data[matrix.indptr[a]:matrix.indptr[a + 1]]
        keep = cols != a
        cols, vals = cols[keep], vals[keep]
        if top:
            cols = cols[np.lexsort((cols, -vals))[:top]]
        return set(cols.tolist())

    out = {}
    for a in range(M.shape[0]):
        if base == "mutual":
            rows = strongest(M, a) & strongest(T, a)
        else:
            rows = strongest(M, a) if base in ("out", "both") else set()
            if base in ("in", "both"):
                rows |= strongest(T, a)
        if rows:
            out[a] = sorted(rows)
    return out


def overlap(weak: dict[int, list[int]], gold: dict[int, list[int]]) -> dict[str, float]:
    """Over the curated queries: share of curated links in the weak list, share of weak links curated, and the
    share of curated queries with a weak list."""
    hit = sum(len(set(gold[q]) & set(weak.get(q, ()))) for q in gold)
    links = sum(len(g) for g in gold.values())
    weak_links = sum(len(weak.get(q, ())) for q in gold)
    return {"recall": hit / max(1, links), "precision": hit / max(1, weak_links),
            "queries_with_list": sum(q in weak for q in gold) / max(1, len(gold)),
            "mean_len": weak_links / max(1, sum(q in weak for q in gold))}


def weak_pool(index, lists: dict[str, dict[int, list[int]]], limit: int) -> tuple[dict, dict]:
    """The candidates and signals of every article with a weak list of any kind (at most `limit`, seeded), as
    `recommender train` collects a curated query's (`training.collect`)."""
    queries = sorted(set().union(*(set(weak) for weak in lists.values())))
    if len(queries) > limit:
        queries = sorted(np.random.default_rng(0).choice(queries, limit, replace=False).tolist())
    return collect(index.ranker(Policy(), learned=False), index.data.article_features(), {q: [] for q in queries})


def weak_data(pool: tuple[dict, dict], weak: dict[int, list[int]], name: str) -> CorpusData | None:
    """The weak queries' candidates and signals with their weak links as labels (transfer.CorpusData, no
    baselines); None when no pooled article has a weak list of this kind."""
    cands, signals = pool
    lists = {q: weak[q] for q in cands if q in weak}
    return corpus_data(name, cands, signals, lists, {}) if lists else None


def qs_of(data: CorpusData) -> np.ndarray:
    return np.repeat(np.arange(data.queries), np.diff(data.starts))


def zq(score: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The score standardised over each query's candidates."""
    out = np.zeros(len(score))
    for a, b in zip(starts[:-1], starts[1:]):
        std = score[a:b].std()
        out[a:b] = (score[a:b] - score[a:b].mean()) / std if std > 1e-12 else 0.0
    return out


def prior_fit(weak: CorpusData, prior: DefaultModel, lam: float, hold: tuple = ()) -> DefaultModel:
    """The prior's features fitted listwise on the weak lists with an L2 pull towards the prior's weights
    (min loss(w) + lam/2 |w - prior|^2) instead of towards zero; the signals in `hold` keep the prior's weight."""
    from scipy.optimize import minimize

    from recommender.evaluate.objectives import groups, listwise_loss

    F = query_features(weak.X, prior.signals, prior.normalise, weak.starts)
    qs = qs_of(weak)
    order, starts = groups(qs)
    Fq, yq, w0 = np.ascontiguousarray(F[order]), weak.y[order], np.asarray(prior.coef)

    free = np.array([name not in hold for name in prior.signals], dtype=float)

    def loss(d):
        value, grad = listwise_loss(w0 + d * free, Fq, yq, starts, np.zeros(len(yq)), 0.0)
        return value + 0.5 * lam * (d @ d), grad * free + lam * d

    d = minimize(loss, np.zeros(len(w0)), jac=True, method="L-BFGS-B").x
    return replace(prior, coef=[float(v) for v in w0 + d * free])


def variants(weak: CorpusData, data: CorpusData, prior: DefaultModel, others: list[CorpusData],
             kind: str) -> dict[str, np.ndarray]:
    """Each weak-label variant's score of the curated queries' candidates (data). prior: the transferable
    default fitted leave-one-corpus-out on `others`."""
    base = Config(signals=tuple(prior.signals), normalise=prior.normalise, objective="listwise", penalty=3.0)
    nomention = replace(base, signals=tuple(s for s in base.signals if s != "mention_z"))
    loco_score, fixed = score_corpus(prior, data), zq(data.fixed, data.starts)
    out = {}
    for label, config in ((f"weak-T {kind}", base), (f"weak-T {kind} -nomention", nomention)):
        model = fit_default([weak], config)
        WEIGHTS[f"{data.name} {label}"] = dict(zip(model.signals, model.coef))
        out[label] = score_corpus(model, data)
    for label in (f"weak-T {kind}", f"weak-T {kind} -nomention"):
        for a in BLENDS:
            out[f"blend {a:g} LOCO + {label}"] = a * loco_score + (1 - a) * out[label]
            out[f"blend {a:g} fixed + {label}"] = a * fixed + (1 - a) * zq(out[label], data.starts)
        out[f"LOCO corpora + weak lists, {label.removeprefix('weak-T ')}"] = score_corpus(
            fit_default(others + [weak], base if label.endswith(kind) else nomention), data)
    for lam in PRIOR_PULL:
        out[f"prior-pulled weak-T {kind} lam={lam:g}"] = score_corpus(prior_fit(weak, prior, lam), data)
        out[f"prior-pulled weak-T {kind} lam={lam:g} -mention held"] = score_corpus(
            prior_fit(weak, prior, lam, hold=("mention_z",)), data)
    qs = qs_of(weak)
    for drop in ((False, True) if weak.y.sum() < MAX_FIT_ROWS else ()):  # else fit_rows keeps no negative
        X, Xe = weak.X.copy(), data.X.copy()
        if drop:
            X[:, MENTION] = 0.0
            Xe[:, MENTION] = 0.0
        rows, rate = fit_rows(weak.y)
        for objective in ("pointwise", "listwise"):
            model = fit(X[rows], weak.y[rows], qs[rows], objective, negative_rate=rate)
            out[f"weak-L {objective} {kind}" + (" -nomention" if drop else "")] = model.score(Xe)
    return out


def loco(name: str, cache: Path) -> tuple[DefaultModel, list[CorpusData]]:
    """The transferable default fitted, in the shipped configuration, on the cached corpora other than name."""
    shipped = shipped_model()
    others = [CorpusData.load(p) for p in sorted(cache.glob("*.npz")) if p.stem != name]
    config = Config(signals=tuple(shipped.signals), normalise=shipped.normalise, objective=shipped.objective,
                    penalty=3.0)
    return fit_default(others, config), others


def cell(f: dict, best: float) -> str:
    return f"{f['recall@10']:.3f} / {f['mrr']:.3f} ({f['recall@10'] / best:.3f}x)"


def run(spec: str, args) -> dict:
    name, index_dir, gold_path = spec.split("=", 2)
    timer = time.perf_counter()
    with Index.open(index_dir) as index:
        raw = load_gold_jsonl(gold_path)
        data = collect_corpus(index, raw, name)
        ids = index.data.store.ids()
        row_of = {i: r for r, i in enumerate(ids)}
        kept, _ = gold_in_index(raw, row_of)
        gold = {row_of[q]: [row_of[r] for r in rel] for q, rel in kept.items()}
        print(f"{name}: {data.queries} curated queries, {len(ids)} articles, stored curated lists "
              f"{len(index.data.store.curated())} (unused) ({time.perf_counter() - timer:.0f} s)", file=sys.stderr,
              flush=True)
        lists = {kind: weak_lists(index.data.lexical, kind) for kind in KINDS}
        print(f"\n## {name} ({data.queries} curated queries, {len(ids)} articles)")
        print("weak labels against the curated gold (over the curated queries):")
        for kind in KINDS:
            o = overlap(lists[kind], gold)
            print(f"  {kind}: {len(lists[kind])} articles with a weak list; curated links in the weak list "
                  f"{o['recall']:.3f}, weak links curated {o['precision']:.3f}, curated queries with a weak list "
                  f"{o['queries_with_list']:.3f}, mean weak list {o['mean_len']:.1f}")
        prior, others = loco(name, args.loco_cache)
        trained_on = "+".join(d.name for d in others)
        loco_score = score_corpus(prior, data)
        rows = {"fixed default": data.fixed, "shipped transferable default (in-sample)": score_corpus(shipped_model(), data),
                "transferable default LOCO": loco_score}
        print(f"transferable default LOCO: fitted on {trained_on}")
        t = time.perf_counter()
        pool = weak_pool(index, {kind: lists[kind] for kind in args.kind}, args.train_queries)
        print(f"{name}: {len(pool[0])} weak queries collected ({time.perf_counter() - t:.0f} s)", file=sys.stderr,
              flush=True)
        for kind in args.kind:
            weak = weak_data(pool, lists[kind], name)
            if weak is None or weak.y.mean() > 0.5:
                print(f"  {kind}: " + ("no weak list" if weak is None else
                                       f"{weak.y.mean():.0%} of the candidates are weak links") + ", not trained")
                continue
            print(f"  {kind}: trained on {weak.queries} weak queries, {int(weak.y.sum())} of their "
                  f"{int(weak.wanted.sum())} weak links in the candidates")
            rows.update(variants(weak, data, prior, others, kind))
    best = max(v["recall@10"] for v in data.baselines.values())
    table = {label: figures(data, score) for label, score in rows.items()}
    table.update({k: v for k, v in data.baselines.items()})
    print("variant | recall@10 / MRR (ratio to the best lexical)")
    for label, f in table.items():
        print(f"  {label} | {cell(f, best)}")
    print(f"({time.perf_counter() - timer:.0f} s)", flush=True)
    return {"name": name, "best": best, "table": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", required=True, help="NAME=INDEX=GOLD (repeat)")
    parser.add_argument("--loco-cache", type=Path, required=True, help="measure_transfer.py's cache (NAME.npz of each corpus)")
    parser.add_argument("--kind", action="append", choices=KINDS, help="weak lists to train on (repeat; default all)")
    parser.add_argument("--train-queries", type=int, default=2000, help="weak queries collected at most (seeded)")
    args = parser.parse_args()
    args.kind = args.kind or list(KINDS)
    results = [run(spec, args) for spec in args.corpus]
    labels = [label for label in results[0]["table"] if label not in ("tfidf", "bm25")]
    print("\n## lowest ratio over the corpora; whether it beats the LOCO transferable default / the fixed default on every one")
    for label in labels:
        if not all(label in r["table"] for r in results):
            continue
        low = min(r["table"][label]["recall@10"] / r["best"] for r in results)
        lex_mrr = all(r["table"][label]["mrr"] > max(r["table"][b]["mrr"] for b in ("tfidf", "bm25"))
                      for r in results)
        beats = all(r["table"][label]["recall@10"] > r["table"]["transferable default LOCO"]["recall@10"]
                    for r in results)
        fixed = all(r["table"][label]["recall@10"] > r["table"]["fixed default"]["recall@10"] for r in results)
        print(f"  {label}: lowest {low:.3f}x, MRR above the best lexical everywhere {lex_mrr}, "
              f"beats LOCO everywhere {beats}, beats the fixed default everywhere {fixed}")
    print("\n## weak-T weights (standardised per query)")
    for label, weights in WEIGHTS.items():
        print(f"  {label}: " + ", ".join(f"{k} {v:+.3f}" for k, v in weights.items()))


if __name__ == "__main__":
    main()
