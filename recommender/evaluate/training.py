"""Learning a ranking from a site's own curated related lists: the candidates' signals, logistic regression
(scikit-learn), k-fold cross-validation over queries (no query is ranked by a model fitted on its own list), the
fit on every list, and the batch's training step. The model it produces is applied by recommender.rank.learned.

    model, report = train(index, folds=5, seed=0)   # cross-validated report + a model fitted on every list
    store_model(index.folder, model)                 # its JSON, and the arrays a query reads instead
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..rank.graph_signals import GraphFacts, Pairs
from ..rank.learned import ALL_SIGNALS, LearnedModel, load_model, save_model
from ..rank.signals import SiteFacts, pair_signals
from ..store.manifest import IndexProblem

log = logging.getLogger(__name__)

MIN_LISTS = 20  # fewer curated lists than this: keep the default ranking
MAX_FIT_ROWS = 500_000  # candidate pairs a fit uses at most (all positives, a sample of the negatives)


def collect(ranker, facts: SiteFacts, gold: dict[int, list[int]], progress: bool = False):
    """Every curated query's candidates (the default ranking) and their SIGNALS, by query."""
    from ..common.progress import progress_bar

    cands, base = {}, {}
    queries = sorted(gold)
    with progress_bar(len(queries), desc="signals", unit="query", enabled=progress) as bar:
        for start in range(0, len(queries), 256):
            for cand in ranker.score_rows(np.array(queries[start:start + 256])):
                cands[cand.query] = cand
                base[cand.query] = pair_signals(cand.query, cand.rows, cand.z, facts)
            bar.update(min(256, len(queries) - start))
    return cands, base


def graph_columns(graph: GraphFacts, cands: dict | Pairs, queries) -> np.ndarray:
    """The graph signals of every query's candidates, in the order of `queries` (cands: Candidates by query, or
    the Pairs made from them once)."""
    pairs = cands if isinstance(cands, Pairs) else Pairs.of(cands, queries)
    return graph.columns_many(pairs)


def fit_rows(y: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The rows a fit uses: all of them, or above MAX_FIT_ROWS every positive and a seeded uniform sample of the
    negatives."""
    rows = np.arange(len(y)) if rows is None else rows
    if len(rows) <= MAX_FIT_ROWS:
        return rows
    positives, negatives = rows[y[rows]], rows[~y[rows]]
    keep = np.random.default_rng(0).choice(negatives, max(0, MAX_FIT_ROWS - len(positives)), replace=False)
    return np.sort(np.concatenate([positives, keep]))


def fit(X: np.ndarray, y: np.ndarray, C: float = 1.0) -> LearnedModel:
    """Logistic regression, signals standardised, classes balanced. Above MAX_FIT_ROWS pairs it fits on every
    positive and a seeded uniform sample of the negatives (the balanced weights make up for the ratio; on MDN,
    200,000 to 1,000,000 rows give the same cross-validated figures to 0.001)."""
    from sklearn.linear_model import LogisticRegression

    if len(y) > MAX_FIT_ROWS:
        chosen = fit_rows(y)
        X, y = X[chosen], y[chosen]
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    clf = LogisticRegression(C=C, max_iter=300, class_weight="balanced")
    clf.fit((X - mean) / scale, y)
    return LearnedModel(signals=list(ALL_SIGNALS[:X.shape[1]]), mean=mean.tolist(), scale=scale.tolist(), coef=clf.coef_[0].tolist(),
                        intercept=float(clf.intercept_[0]))


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


def cv_scores(X, y, qs, queries, folds: int = 5, seed: int = 0, fold_columns=None):
    """k-fold over queries: each row's score by a model fitted without its query's curated list; and the fold of
    each query. fold_columns(training queries), when given, adds columns computed from those queries' lists only
    (every row, in X's order)."""
    fold_of = assign_folds(queries, folds, seed)
    row_fold = np.array([fold_of[int(q)] for q in qs])
    scores = np.zeros(len(y), dtype=np.float32)
    for f in range(folds):
        extra = None if fold_columns is None else fold_columns([q for q in queries if fold_of[q] != f])

        def take(rows):
            return X[rows] if extra is None else np.hstack([X[rows], extra[rows]])

        train_rows = fit_rows(y, np.flatnonzero(row_fold != f))
        test_rows = np.flatnonzero(row_fold == f)
        model = fit(take(train_rows), y[train_rows])
        scores[test_rows] = model.score(take(test_rows))
    return scores, fold_of


def rows_by_query(qs: np.ndarray) -> dict[int, np.ndarray]:
    """Query -> the positions of its rows (in order)."""
    order = np.argsort(qs, kind="stable")
    keys, starts = np.unique(qs[order], return_index=True)
    return {int(k): part for k, part in zip(keys, np.split(order, starts[1:]))}


def cross_validate(X, y, qs, default_scores, gold, folds: int = 5, seed: int = 0, fold_columns=None) -> dict:
    """k-fold over queries: each query is ranked by a model fitted without its own curated list."""
    scores, fold_of = cv_scores(X, y, qs, sorted(gold), folds, seed, fold_columns)
    learned = {}
    for q, where in rows_by_query(qs).items():
        learned[q] = ranks_in(default_scores[q][0], scores[where], gold[q])
    default = {q: ranks_in(rows, score, gold[q]) for q, (rows, score) in default_scores.items()}
    return {"folds": folds, "seed": seed, "learned": summarise(learned, gold), "default": summarise(default, gold),
            "fold_of": {int(k): int(v) for k, v in fold_of.items()}}


def _training_set(index, policy, gold: dict[int, list[int]], progress: bool):
    """Candidates, base signals, labels and query numbers of every curated query, the graph facts of all the
    lists, and fold_columns for cross-validation (the graph signals from the training folds' lists only)."""
    ranker = index.ranker(policy, learned=False)
    cands, base = collect(ranker, index.site_facts(), gold, progress)
    queries = sorted(gold)
    X = np.vstack([base[q] for q in queries])
    y = np.concatenate([np.isin(cands[q].rows, gold[q]) for q in queries])
    qs = np.concatenate([np.full(len(cands[q].rows), q) for q in queries])
    graph = GraphFacts.build(ranker.vectors, index.lexical, gold, (ranker.mean_vector, ranker.second_moment))
    pairs = Pairs.of(cands, queries)

    def fold_columns(train_queries):
        return graph_columns(graph.with_lists({q: gold[q] for q in train_queries}), pairs, queries)

    return cands, X, y, qs, graph, fold_columns


def cross_validated_candidates(index, policy, gold: dict[int, list[int]], folds: int = 5, seed: int = 0,
                               progress: bool = False) -> tuple[dict, dict[int, int]]:
    """Each query's candidates (the default ranker's) re-scored by a model fitted on the other folds' curated
    lists only, best first; and the fold of each query. What `evaluate` ranks as the learned system."""
    if len(gold) < max(MIN_LISTS, folds):
        raise ValueError(f"{len(gold)} curated lists, at least {max(MIN_LISTS, folds)} are needed to learn a ranking")
    cands, X, y, qs, _, fold_columns = _training_set(index, policy, gold, progress)
    scores, fold_of = cv_scores(X, y, qs, sorted(gold), folds, seed, fold_columns)
    for q, where in rows_by_query(qs).items():
        cand = cands[q]
        cand.score = scores[where]
        cands[q] = cand.take(np.lexsort((cand.rows, -cand.score)))
    return cands, fold_of


def tfidf_baseline(lexical, gold: dict[int, list[int]]) -> dict[str, float]:
    """The TF-IDF baseline on the same queries, ranking the whole corpus (from the stored lexical index)."""
    from .metrics import gold_ranks

    queries = sorted(gold)
    ranks: dict[int, list[float]] = {}
    for start in range(0, len(queries), 256):
        block = np.array(queries[start:start + 256])
        scores = np.asarray(lexical.tfidf_rows(block), dtype=np.float64)
        for i, q in enumerate(block):
            scores[i, q] = -np.inf
            ranks[int(q)] = [float(r) for r in gold_ranks(scores[i], gold[int(q)])]
    return summarise(ranks, gold)


def train(index, policy=None, folds: int = 5, seed: int = 0, gold: dict[str, list[str]] | None = None,
          progress: bool = False) -> tuple[LearnedModel, dict]:
    """Cross-validate, then fit on every curated list (the index's, or `gold`). Raises ValueError when there are
    too few lists."""
    from .metrics import gold_in_index

    timer = time.perf_counter()
    ids = index.store.ids()
    row_of = {i: r for r, i in enumerate(ids)}
    kept, _ = gold_in_index(gold if gold is not None else index.store.curated(), row_of)
    if len(kept) < MIN_LISTS:
        raise ValueError(f"{index.folder}: {len(kept)} curated lists in the index, at least {MIN_LISTS} are needed "
                         "to learn a ranking; the default ranking stays")
    gold = {row_of[q]: [row_of[r] for r in rel] for q, rel in kept.items()}
    cands, X, y, qs, graph, fold_columns = _training_set(index, policy, gold, progress)
    default_scores = {q: (cand.rows, cand.score) for q, cand in cands.items()}
    collected = time.perf_counter() - timer
    report = cross_validate(X, y, qs, default_scores, gold, folds, seed, fold_columns)
    if index.lexical is not None and index.lexical.count == len(ids):
        report["tfidf"] = tfidf_baseline(index.lexical, gold)
    rows = fit_rows(y)
    model = fit(np.hstack([X[rows], graph_columns(graph, cands, sorted(gold))[rows]]), y[rows])
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
        ids = index.store.ids()
        kept, _ = gold_in_index(index.store.curated(), {i: r for r, i in enumerate(ids)})
        out: dict = {"trained": False, "lists": len(kept)}
        if len(kept) < policy.ranking.train_min_lists:
            out["reason"] = f"{len(kept)} curated lists, [ranking] train_min_lists is {policy.ranking.train_min_lists}"
            return out
        try:
            stored = load_model(index.folder)
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
            write_for_index(index)
    except IndexProblem as exc:
        log.warning("%s: learned ranking stored without its query arrays (%s); queries read its JSON", folder, exc)
    return path
