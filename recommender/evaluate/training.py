"""Learning a ranking from a site's own curated related lists: the candidates' signals, k-fold cross-validation
over queries of each fitting objective (`objectives.py`; no query is ranked by a model fitted on its own list, and
`evaluate` also chooses the objective without it), the fit on every list, and the batch's training step. The
model it produces is applied by recommender.rank.learned.

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
from .objectives import OBJECTIVES, better, fit, fit_rows, groups

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


def cv_scores(X, y, qs, queries, folds: int = 5, seed: int = 0, fold_columns=None, objectives=("pointwise",)):
    """k-fold over queries: each row's score by a model fitted without its query's curated list, one array per
    objective; and the fold of each query. fold_columns(training queries), when given, adds columns computed from
    those queries' lists only (every row, in X's order)."""
    fold_of = assign_folds(queries, folds, seed)
    row_fold = np.array([fold_of[int(q)] for q in qs])
    scores = {name: np.zeros(len(y), dtype=np.float32) for name in objectives}
    for f in range(folds):
        test_rows = np.flatnonzero(row_fold == f)
        fitted = _fit_without(X, y, qs, [q for q in queries if fold_of[q] != f], row_fold != f, test_rows,
                              fold_columns, objectives)
        for name in objectives:
            scores[name][test_rows] = fitted[name]
    return scores, fold_of


def _fit_without(X, y, qs, train_queries, train_mask, test_rows, fold_columns, objectives) -> dict:
    """The scores of test_rows under each objective's model fitted on the rows of train_mask (whose queries are
    train_queries; the fold columns from their lists only)."""
    extra = None if fold_columns is None else fold_columns(train_queries)

    def take(rows):
        return X[rows] if extra is None else np.hstack([X[rows], extra[rows]])

    rows, rate = fit_rows(y, np.flatnonzero(train_mask))
    train_X, test_X = take(rows), take(test_rows)
    return {name: fit(train_X, y[rows], qs[rows], name, negative_rate=rate).score(test_X) for name in objectives}


def nested_scores(X, y, qs, default_rows, gold, folds: int = 5, seed: int = 0, fold_columns=None):
    """k-fold over queries with the objective chosen inside each fold: for the queries of fold f, the objective
    that cross-validated better over the *other* folds alone (each of them scored by models fitted on the
    remaining folds, so without f's lists) ranks them with a model fitted on every fold but f. No curated list
    of fold f takes part in choosing or fitting what ranks it. Returns the scores, the fold of each query and
    the objective each fold got."""
    queries = sorted(gold)
    outer, fold_of = cv_scores(X, y, qs, queries, folds, seed, fold_columns, OBJECTIVES)
    row_fold = np.array([fold_of[int(q)] for q in qs])
    by_query = rows_by_query(qs)
    pair = {}  # (f, g): each objective's scores of the rows of folds f and g, fitted on the other folds
    for f in range(folds):
        for g in range(f + 1, folds):
            held = (row_fold == f) | (row_fold == g)
            test_rows = np.flatnonzero(held)
            fitted = _fit_without(X, y, qs, [q for q in queries if fold_of[q] not in (f, g)], ~held, test_rows,
                                  fold_columns, OBJECTIVES)
            for name in OBJECTIVES:
                pair[f, g, name] = (test_rows, fitted[name])
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
    return scores, fold_of, chosen


def rows_by_query(qs: np.ndarray) -> dict[int, np.ndarray]:
    """Query -> the positions of its rows (in order)."""
    order, starts = groups(qs)
    return {int(qs[part[0]]): part for part in np.split(order, starts[1:-1])} if len(qs) else {}


def cross_validate(X, y, qs, default_scores, gold, folds: int = 5, seed: int = 0, fold_columns=None,
                   objectives=OBJECTIVES) -> dict:
    """k-fold over queries: each query is ranked by a model fitted without its own curated list, under each of
    `objectives`; "learned" is the better of them (`objective`), each one's figures under "objectives"."""
    scores, fold_of = cv_scores(X, y, qs, sorted(gold), folds, seed, fold_columns, objectives)
    by_query = rows_by_query(qs)
    figures = {name: summarise({q: ranks_in(default_scores[q][0], values[where], gold[q])
                                for q, where in by_query.items()}, gold) for name, values in scores.items()}
    chosen = better(figures)
    default = {q: ranks_in(rows, score, gold[q]) for q, (rows, score) in default_scores.items()}
    return {"folds": folds, "seed": seed, "learned": figures[chosen], "objective": chosen, "objectives": figures,
            "default": summarise(default, gold), "fold_of": {int(k): int(v) for k, v in fold_of.items()}}


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
                               progress: bool = False) -> tuple[dict, dict[int, int], list[str]]:
    """Each query's candidates (the default ranker's) re-scored by a model fitted on the other folds' curated
    lists only, with the objective chosen without them too (`nested_scores`), best first; the fold of each query;
    the objective of each fold. What `evaluate` ranks as the learned system."""
    problem = too_few_lists(len(gold), policy, folds)
    if problem:
        raise ValueError(problem)
    cands, X, y, qs, _, fold_columns = _training_set(index, policy, gold, progress)
    scores, fold_of, chosen = nested_scores(X, y, qs, {q: c.rows for q, c in cands.items()}, gold, folds, seed,
                                            fold_columns)
    for q, where in rows_by_query(qs).items():
        cand = cands[q]
        cand.score = scores[where]
        cands[q] = cand.take(np.lexsort((cand.rows, -cand.score)))
    return cands, fold_of, chosen


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
          progress: bool = False, objective: str = "auto") -> tuple[LearnedModel, dict]:
    """Cross-validate, then fit on every curated list (the index's, or `gold`). objective: "auto" cross-validates
    every one of OBJECTIVES and fits the better; or one of them. Raises ValueError when there are too few lists or
    the objective is unknown."""
    from .metrics import gold_in_index

    timer = time.perf_counter()
    ids = index.store.ids()
    row_of = {i: r for r, i in enumerate(ids)}
    kept, _ = gold_in_index(gold if gold is not None else index.store.curated(), row_of)
    problem = too_few_lists(len(kept), policy, folds)
    if problem:
        raise ValueError(f"{index.folder}: {problem}; the default ranking stays")
    if objective != "auto" and objective not in OBJECTIVES:
        raise ValueError(f"objective must be auto or one of {', '.join(OBJECTIVES)}, not {objective!r}")
    gold = {row_of[q]: [row_of[r] for r in rel] for q, rel in kept.items()}
    cands, X, y, qs, graph, fold_columns = _training_set(index, policy, gold, progress)
    default_scores = {q: (cand.rows, cand.score) for q, cand in cands.items()}
    collected = time.perf_counter() - timer
    report = cross_validate(X, y, qs, default_scores, gold, folds, seed, fold_columns,
                            OBJECTIVES if objective == "auto" else (objective,))
    if index.lexical is not None and index.lexical.count == len(ids):
        report["tfidf"] = tfidf_baseline(index.lexical, gold)
    rows, rate = fit_rows(y)
    model = fit(np.hstack([X[rows], graph_columns(graph, cands, sorted(gold))[rows]]), y[rows], qs[rows],
                report["objective"], negative_rate=rate)
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
        problem = too_few_lists(len(kept), policy)
        if problem:
            out["reason"] = problem
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
