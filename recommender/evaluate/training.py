"""Learning a ranking from a site's own curated related lists: the candidates' signals, k-fold cross-validation
over queries of each fitting objective (`objectives.py`; no query is ranked by a model fitted on its own list, and
`evaluate` also chooses the objective without it), the fit on every list, and the batch's training step. The
model it produces is applied by recommender.rank.learned.

    model, report = train(index, folds=5, seed=0)   # cross-validated report + a model fitted on every list
    store_model(index.data.folder, model)            # its JSON, and the arrays a query reads instead
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..common.errors import InputError
from ..rank.graph_signals import LinkGraphs, Pairs
from ..rank.learned import ALL_SIGNALS, LearnedModel, load_model, save_model
from ..rank.ranking import QUERY_BLOCK
from ..rank.signals import ArticleFeatures
from ..rank.signaltable import graph_columns_many, pair_signals
from ..store.manifest import IndexProblem
from .objectives import OBJECTIVES, better, fit, fit_rows, groups
from .protocols import FoldView, has_dates, published_columns, published_gold

log = logging.getLogger(__name__)



def too_few_lists(count: int, policy=None, folds: int = 0) -> str | None:
    """Why `count` curated lists are too few to learn a ranking (None: enough). The one rule, and message, of
    `train`, the batch's training step and `evaluate`'s learned row: the policy's `[ranking] train_min_lists`,
    and at least one list per fold."""
    from ..rank.policy import Policy

    minimum = (policy or Policy()).ranking.train_min_lists
    need = max(minimum, folds)
    if count >= need:
        return None
    why = f"[ranking] train_min_lists is {minimum}" if need == minimum else f"one per fold, {folds} folds"
    return f"{count} curated lists, at least {need} are needed to learn a ranking ({why})"


def collect(ranker, facts: ArticleFeatures, gold: dict[int, list[int]], progress: bool = False):
    """Every curated query's candidates (the default ranking) and their SIGNALS, by query."""
    from ..common.progress import progress_bar

    cands, base = {}, {}
    queries = sorted(gold)
    with progress_bar(len(queries), desc="signals", unit="query", enabled=progress) as bar:
        for start in range(0, len(queries), QUERY_BLOCK):
            for cand in ranker.score_rows(np.array(queries[start:start + QUERY_BLOCK])):
                cands[cand.query] = cand
                base[cand.query] = pair_signals(cand.query, cand.rows, cand.z, facts)
            bar.update(min(QUERY_BLOCK, len(queries) - start))
    return cands, base


def ranks_in(rows: np.ndarray, score: np.ndarray, gold: list[int]) -> list[float]:
    """1-based ranks of the gold rows in the ordered candidates; inf for gold outside the candidates."""
    order = rows[np.lexsort((rows, -score))]
    where = {int(r): i + 1 for i, r in enumerate(order)}
    return [float(where.get(g, np.inf)) for g in gold]


def summarise(ranks: dict[int, list[float]], gold: dict[int, list[int]]) -> dict[str, float]:
    recall = np.mean([sum(r <= 10 for r in ranks[q]) / len(gold[q]) for q in ranks])
    mrr = np.mean([1.0 / min(ranks[q]) for q in ranks])
    return {"recall@10": round(float(recall), 4), "mrr": round(float(mrr), 4), "queries": len(ranks)}


def assign_folds(queries, folds: int, seed: int) -> dict[int, int]:
    """Query -> fold: a seeded permutation of the sorted queries, dealt round-robin into `folds` folds."""
    queries = np.array(sorted(queries))
    rng = np.random.default_rng(seed)
    return dict(zip(rng.permutation(queries).tolist(), (np.arange(len(queries)) % folds).tolist()))


def cv_scores(X, y, qs, queries, folds: int = 5, seed: int = 0, view=None, objectives=("pointwise",)):
    """k-fold over queries: each row's score by a model fitted without its query's curated list, one array per
    objective; the fold of each query; and each fold's models by objective. view(held queries), when given
    (`protocols.FoldView`), adds columns computed from the lists the held-out queries may see (every row, in X's
    order) and says which rows a model may be fitted on; else the other folds' rows."""
    fold_of = assign_folds(queries, folds, seed)
    row_fold = np.array([fold_of[int(q)] for q in qs])
    scores = {name: np.zeros(len(y), dtype=np.float32) for name in objectives}
    models = []
    for f in range(folds):
        test_rows = np.flatnonzero(row_fold == f)
        fitted = _fit_without(X, y, qs, [q for q in queries if fold_of[q] == f], test_rows, view, objectives)
        models.append({name: model for name, (model, _) in fitted.items()})
        for name in objectives:
            scores[name][test_rows] = fitted[name][1]
    return scores, fold_of, models


def _fit_without(X, y, qs, held, test_rows, view, objectives) -> dict:
    """Each objective's model fitted without the held-out queries' lists (and, under the `new` protocol, without
    their articles in any list), and its scores of test_rows."""
    if view is None:
        extra, train = None, ~np.isin(qs, np.asarray(list(held), dtype=np.int64))
    else:
        extra, train = view(held)

    def take(rows):
        return X[rows] if extra is None else np.hstack([X[rows], extra[rows]])

    rows, rate = fit_rows(y, np.flatnonzero(train))
    train_X, test_X = take(rows), take(test_rows)
    out = {}
    for name in objectives:
        if y[rows].any() and not y[rows].all():
            model = fit(train_X, y[rows], qs[rows], name, negative_rate=rate)
        else:  # nothing to learn from (a tiny corpus whose every link names a held-out article): no preference
            model = LearnedModel(signals=list(ALL_SIGNALS[:train_X.shape[1]]), mean=[0.0] * train_X.shape[1],
                                 scale=[1.0] * train_X.shape[1], coef=[0.0] * train_X.shape[1], intercept=0.0,
                                 objective=name)
        out[name] = (model, model.score(test_X))
    return out


def nested_scores(X, y, qs, default_rows, gold, folds: int = 5, seed: int = 0, view=None):
    """k-fold over queries with the objective chosen inside each fold: for the queries of fold f, the objective
    that cross-validated better over the *other* folds alone (each of them scored by models fitted on the
    remaining folds, so without f's lists) ranks them with a model fitted on every fold but f. No curated list
    of fold f takes part in choosing or fitting what ranks it. Returns the scores, the fold of each query, the
    objective each fold got and the model that ranked each fold."""
    queries = sorted(gold)
    outer, fold_of, outer_models = cv_scores(X, y, qs, queries, folds, seed, view, OBJECTIVES)
    row_fold = np.array([fold_of[int(q)] for q in qs])
    by_query = rows_by_query(qs)
    pair = {}  # (f, g): each objective's scores of the rows of folds f and g, fitted on the other folds
    for f in range(folds):
        for g in range(f + 1, folds):
            held = (row_fold == f) | (row_fold == g)
            test_rows = np.flatnonzero(held)
            fitted = _fit_without(X, y, qs, [q for q in queries if fold_of[q] in (f, g)], test_rows, view,
                                  OBJECTIVES)
            for name in OBJECTIVES:
                pair[f, g, name] = (test_rows, fitted[name][1])
    scores = np.zeros(len(y), dtype=np.float32)
    chosen = []
    for f in range(folds):
        inner = [q for q in queries if fold_of[q] != f]
        figures = {}
        for name in OBJECTIVES:
            inner_scores = np.zeros(len(y), dtype=np.float32)
            for g in range(folds):
                if g != f:
                    rows, values = pair[min(f, g), max(f, g), name]
                    keep = row_fold[rows] == g
                    inner_scores[rows[keep]] = values[keep]
            figures[name] = summarise({q: ranks_in(default_rows[q], inner_scores[by_query[q]], gold[q])
                                       for q in inner}, gold)
        chosen.append(better(figures))
        scores[row_fold == f] = outer[chosen[-1]][row_fold == f]
    return scores, fold_of, chosen, [outer_models[f][name] for f, name in enumerate(chosen)]


def rows_by_query(qs: np.ndarray) -> dict[int, np.ndarray]:
    """Query -> the positions of its rows (in order)."""
    order, starts = groups(qs)
    return {int(qs[part[0]]): part for part in np.split(order, starts[1:-1])} if len(qs) else {}


def cross_validate(X, y, qs, default_scores, gold, folds: int = 5, seed: int = 0, view=None,
                   objectives=OBJECTIVES) -> dict:
    """k-fold over queries: each query is ranked by a model fitted without its own curated list, under each of
    `objectives`; "learned" is the better of them (`objective`), each one's figures under "objectives"; "models"
    holds each fold's model of the better objective."""
    scores, fold_of, models = cv_scores(X, y, qs, sorted(gold), folds, seed, view, objectives)
    by_query = rows_by_query(qs)
    figures = {name: summarise({q: ranks_in(default_scores[q][0], values[where], gold[q])
                                for q, where in by_query.items()}, gold) for name, values in scores.items()}
    chosen = better(figures)
    default = {q: ranks_in(rows, score, gold[q]) for q, (rows, score) in default_scores.items()}
    return {"folds": folds, "seed": seed, "learned": figures[chosen], "objective": chosen, "objectives": figures,
            "default": summarise(default, gold), "fold_of": {int(k): int(v) for k, v in fold_of.items()},
            "models": [m[chosen] for m in models]}


class TrainingSet:
    """Every curated query's candidates (the default ranking) and base signals, labels and query of each row, and
    the graph facts of all the lists, from which each protocol's fold view is made."""

    def __init__(self, index, policy, gold: dict[int, list[int]], progress: bool = False):
        ranker = index.ranker(policy, learned=False)
        self.gold = gold
        self.days = index.data.article_features().days
        self.cands, base = collect(ranker, index.data.article_features(), gold, progress)
        queries = sorted(gold)
        self.X = np.vstack([base[q] for q in queries])
        self.y = np.concatenate([np.isin(self.cands[q].rows, gold[q]) for q in queries])
        self.qs = np.concatenate([np.full(len(self.cands[q].rows), q) for q in queries])
        self.graph = LinkGraphs.build(np.asarray(ranker.vectors), index.data.lexical, gold,  # every row decoded
                                      (ranker.mean_vector, ranker.second_moment))
        self.pairs = Pairs.of(self.cands, queries)

    def view(self, protocol: str) -> FoldView:
        return FoldView(self.graph, self.pairs, self.gold, protocol)

    def published(self, fold_of: dict[int, int], models: list) -> tuple[dict, dict, dict, dict]:
        """The as-published protocol: each dated query's candidates published no later than it, scored by its
        fold's model over graph columns from the lists older than it, and the same candidates under the default
        ranking; the gold cut to match; the queries left out. Empty when the corpus has no dates."""
        if not has_dates(self.days, self.gold):
            return {}, {}, {}, {}
        gold, left_out = published_gold(self.days, self.gold)
        columns = published_columns(self.graph, self.cands, self.gold, self.days, sorted(gold))
        by_query = rows_by_query(self.qs)
        learned, default = {}, {}
        for q, (keep, extra) in columns.items():
            default[q] = self.cands[q].take(keep)
            learned[q] = self.cands[q].take(keep)
            learned[q].score = models[fold_of[q]].score(np.hstack([self.X[by_query[q][keep]], extra]))
        return learned, default, gold, left_out


def cross_validated_candidates(index, policy, gold: dict[int, list[int]], folds: int = 5, seed: int = 0,
                               progress: bool = False) -> dict[str, dict]:
    """Under each protocol (`protocols.PROTOCOLS`; as-published only with dates), each query's candidates (the
    default ranker's) re-scored by a model fitted on the other folds' curated lists only, with the objective
    chosen without them too (`nested_scores`), best first; the fold of each query; the objective of each fold;
    the gold the protocol ranks against and what it left out. What `evaluate` ranks as the learned systems. Each
    protocol's objective is chosen under that protocol; as-published uses the `new` protocol's models."""
    problem = too_few_lists(len(gold), policy, folds)
    if problem:
        raise InputError(problem)
    data = TrainingSet(index, policy, gold, progress)
    default_rows = {q: c.rows for q, c in data.cands.items()}
    out = {}
    for protocol in ("existing", "new"):
        scores, fold_of, chosen, models = nested_scores(data.X, data.y, data.qs, default_rows, gold, folds, seed,
                                                        data.view(protocol))
        cands = {}
        for q, where in rows_by_query(data.qs).items():
            cand = data.cands[q].take(np.arange(len(where)))
            cand.score = scores[where]
            cands[q] = cand
        out[protocol] = {"cands": cands, "fold_of": fold_of, "objectives": chosen, "gold": gold, "left_out": {}}
        if protocol == "new":
            published, _, published_gold_, left_out = data.published(fold_of, models)
            if published:
                out["as-published"] = {"cands": published, "fold_of": fold_of, "objectives": chosen,
                                       "gold": published_gold_, "left_out": left_out}
    for result in out.values():
        result["cands"] = {q: c.take(np.lexsort((c.rows, -c.score))) for q, c in result["cands"].items()}
    return out


def learned_for(policy) -> str:
    """The protocol the policy chooses the learned ranking for (`[ranking] learned_for`, default new)."""
    return getattr(getattr(policy, "ranking", None), "learned_for", "new")


def tfidf_baseline(lexical, gold: dict[int, list[int]]) -> dict[str, float]:
    """The TF-IDF baseline on the same queries, ranking the whole corpus (from the stored lexical index)."""
    from .metrics import gold_ranks

    queries = sorted(gold)
    ranks: dict[int, list[float]] = {}
    for start in range(0, len(queries), QUERY_BLOCK):
        block = np.array(queries[start:start + QUERY_BLOCK])
        scores = np.asarray(lexical.tfidf_rows(block), dtype=np.float64)
        for i, q in enumerate(block):
            scores[i, q] = -np.inf
            ranks[int(q)] = [float(r) for r in gold_ranks(scores[i], gold[int(q)])]
    return summarise(ranks, gold)


def train(index, policy=None, folds: int = 5, seed: int = 0, gold: dict[str, list[str]] | None = None,
          progress: bool = False, objective: str = "auto") -> tuple[LearnedModel, dict]:
    """Cross-validate, then fit on every curated list (the index's, or `gold`). objective: "auto" cross-validates
    every one of OBJECTIVES and fits the better; or one of them. Raises ValueError when there are too few lists or
    the objective is unknown."""
    from .metrics import gold_in_index

    timer = time.perf_counter()
    ids = index.data.store.ids()
    row_of = {i: r for r, i in enumerate(ids)}
    kept, _ = gold_in_index(gold if gold is not None else index.data.store.curated(), row_of)
    problem = too_few_lists(len(kept), policy, folds)
    if problem:
        raise InputError(f"{index.data.folder}: {problem}; the default ranking stays")
    if objective != "auto" and objective not in OBJECTIVES:
        raise InputError(f"objective must be auto or one of {', '.join(OBJECTIVES)}, not {objective!r}")
    gold = {row_of[q]: [row_of[r] for r in rel] for q, rel in kept.items()}
    chosen_for = learned_for(policy)  # the objective is chosen, and the model judged, under this protocol
    data = TrainingSet(index, policy, gold, progress)
    X, y, qs = data.X, data.y, data.qs
    default_scores = {q: (cand.rows, cand.score) for q, cand in data.cands.items()}
    collected = time.perf_counter() - timer
    report = cross_validate(X, y, qs, default_scores, gold, folds, seed, data.view(chosen_for),
                            OBJECTIVES if objective == "auto" else (objective,))
    report["protocol"] = chosen_for
    other = "existing" if chosen_for == "new" else "new"
    other_report = cross_validate(X, y, qs, default_scores, gold, folds, seed, data.view(other),
                                  (report["objective"],))  # the same objective, measured under the other protocol
    report["protocols"] = {name: {"learned": r["learned"], "default": r["default"]}
                           for name, r in sorted({chosen_for: report, other: other_report}.items())}
    new_report = report if chosen_for == "new" else other_report
    published, default, published_gold_, left_out = data.published(new_report["fold_of"], new_report["models"])
    if published:
        report["protocols"]["as-published"] = {
            name: summarise({q: ranks_in(c.rows, c.score, published_gold_[q]) for q, c in cands.items()},
                            published_gold_) for name, cands in (("learned", published), ("default", default))}
        report["protocols"]["as-published"]["left_out"] = left_out
    for r in (report, other_report):
        r.pop("models")
    if index.data.lexical is not None and index.data.lexical.count == len(ids):
        report["tfidf"] = tfidf_baseline(index.data.lexical, gold)
    rows, rate = fit_rows(y)
    extra = graph_columns_many(data.graph, data.pairs)  # every signal: the self-naming ones are zero for a new article
    model = fit(np.hstack([X[rows], extra[rows]]), y[rows], qs[rows], report["objective"], negative_rate=rate)
    model.trained_on = len(gold)
    model.curated = curated_digest(kept)
    model.lists = {q: list(related) for q, related in sorted(kept.items())}
    model.cv = {k: v for k, v in report.items() if k != "fold_of"}
    report["weights"] = dict(zip(model.signals, [round(c, 4) for c in model.coef]))
    report["seconds"] = {"signals": round(collected, 1), "total": round(time.perf_counter() - timer, 1)}
    report["pairs"] = int(len(y))
    return model, report


def curated_digest(lists: dict[str, list[str]]) -> str:
    """A digest of curated lists (query id -> related ids, in order)."""
    return hashlib.sha256(json.dumps(sorted(lists.items())).encode()).hexdigest()


def train_if_due(folder: Path, policy, progress: bool = False) -> dict:
    """The batch's training step: fit and store a model (as `recommender train` does) when the policy uses the
    learned ranking, the index holds at least `[ranking] train_min_lists` curated lists, and no model is stored
    or the curated lists changed since it was fitted. Returns what happened, for the run record."""
    from .metrics import gold_in_index
    from ..rank.index import Index

    if policy.ranking.learned == "off":
        return {"trained": False, "reason": "[ranking] learned = off"}
    timer = time.perf_counter()
    with Index.open(folder) as index:
        ids = index.data.store.ids()
        kept, _ = gold_in_index(index.data.store.curated(), {i: r for r, i in enumerate(ids)})
        out: dict = {"trained": False, "lists": len(kept)}
        problem = too_few_lists(len(kept), policy)
        if problem:
            out["reason"] = problem
            return out
        try:
            stored = load_model(index.data.folder)
        except IndexProblem as exc:
            log.warning("%s; training again", exc)
            stored, out["reason"] = None, "stored model refused"
        if stored is not None and stored.curated == curated_digest(kept):
            out.update(reason="curated lists unchanged since the last training", cv=stored.cv)
            return out
        out.setdefault("reason", "no model stored" if stored is None else "curated lists changed")
        try:
            model, report = train(index, policy, progress=progress)
        except ValueError as exc:
            out["reason"] = str(exc)
            return out
    store_model(folder, model)
    out.update(trained=True, used=model.beats_default() or policy.ranking.learned == "on", cv=model.cv,
               seconds=round(time.perf_counter() - timer, 1))
    log.info("learned ranking trained on %d curated lists (%s): recall@10 %.3f under cross-validation, default %.3f",
             len(kept), out["reason"], model.cv["learned"]["recall@10"], model.cv["default"]["recall@10"])
    return out


def store_model(folder: Path, model: LearnedModel) -> Path:
    """Store the model with the index: its JSON (rank.learned.save_model), then the arrays a query by id reads
    instead of the JSON and of the graph facts it would build (rank.learneddata), named in the manifest with it."""
    from ..embed.prepare import Preparation
    from ..rank.index import Index
    from ..rank.learneddata import write_for_index
    from ..store.manifest import read_manifest

    path = save_model(folder, model)
    try:
        preparation = Preparation.from_dict(read_manifest(Path(folder)).preparation)
        with Index.open(folder, preparation=preparation, verify=False) as index:
            write_for_index(index.data)
    except IndexProblem as exc:
        log.warning("%s: learned ranking stored without its query arrays (%s); queries read its JSON", folder, exc)
    return path
