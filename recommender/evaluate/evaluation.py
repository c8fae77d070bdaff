"""Evaluate related-article rankings against hand-curated gold, with baselines computed in the same run.

For every query article with gold, each system scores the whole corpus (the query itself excluded) and the rank
of every gold item in that full ranking is found, ties broken by the lower row first (deterministic). All
metrics follow from those ranks, so MRR and MAP are exact over the full ranking, not cut at a depth:

* recall@k = gold items in the top k / gold items; precision@k = gold items in the top k / k; hit@k = any in top k
* MRR = 1 / rank of the first gold item; MAP = mean over gold items (in rank order i = 1..G) of i / rank_i
* nDCG@k: binary gain, log2 discount, ideal DCG over min(G, k) items
* coverage@k: distinct articles that appear in any query's top k (count, and share of the corpus)

The metrics at k are computed for each k asked (`ks`, default 1, 5, 10, 20).

`recommender.metrics` holds list-based versions of the same metrics; the tests check the two agree.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from ..common.errors import InputError
from ..common.progress import progress_bar
from .metrics import KS, gold_in_index, gold_ranks, metrics_from_ranks
from .protocols import LABELS, publication_days, system_name
from ..rank.ranking import QUERY_BLOCK

log = logging.getLogger(__name__)

CURVE_DEPTH = 50
TOP_KEPT = 20


class Scorer(Protocol):
    name: str

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x corpus size) similarity of each query row to every article."""
        ...

    # optional: ranked(rows) -> (order, shown): an order matrix to rank by and the scores to show for it (NaN
    # where there is none), for a system whose order is not its scores' order (PolicyScorer)


class DenseScorer:
    """Cosine similarity of stored unit vectors (what the FAISS flat index computes)."""

    def __init__(self, vectors: np.ndarray, name: str = "system"):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.name = name

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.vectors[rows] @ self.vectors.T


class PolicyScorer:
    """The final system: hybrid candidates ordered by the link policy (rules, duplicates, diversity, and the
    editorial overrides if given), exactly as `related` and the batch order them; articles that are not
    candidates rank below every candidate."""

    def __init__(self, index, policy, overrides=None, name: str = "system"):
        self.index = index
        self.policy = policy
        self.overrides = overrides
        self.name = name
        self.size = len(index)

    def ranker(self):
        """The default ranking: a site's learned model was fitted on these very curated lists, so scoring the
        queries with it here would let it see its own answers (see CrossValidatedScorer); the shipped transferable
        default, when in force, never saw them and ranks as `related` does."""
        model = self.index.learned_model(self.policy)
        return self.index.ranker(self.policy, learned=model is not None and not getattr(model, "uses_graph", True))

    def candidates(self, rows: np.ndarray) -> list:
        return self.ranker().score_rows(np.asarray(rows))

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.ranked(rows)[0]

    def ranked(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rank order as a score (the first link highest, -inf for what is not a candidate), and each
        link's own score on `related`'s scale (NaN for non-candidates and pins the ranking did not reach)."""
        from ..rank.linking import order_candidates

        vectors = self.ranker().vectors
        facts = self.index.data.rule_columns()
        out = np.full((len(rows), self.size), -np.inf, dtype=np.float64)
        shown = np.full((len(rows), self.size), np.nan, dtype=np.float64)
        for i, cand in enumerate(self.candidates(rows)):
            ordered = order_candidates(cand, facts, vectors, self.policy, self.overrides)
            positions = np.array([link.row for link in ordered], dtype=np.int64)
            out[i, positions] = len(positions) - np.arange(len(positions))  # rank order as a score
            shown[i, positions] = [link.score for link in ordered]
        return out, shown


class CrossValidatedScorer(PolicyScorer):
    """The learned ranking under k-fold cross-validation over the evaluated queries, under one protocol
    (`protocols.py`): each query's candidates re-scored by a model fitted on the other folds' gold lists only, by
    the objective those folds chose (`training.cross_validated_candidates`), then ordered by the link policy like
    `system`. Under as-published it ranks its own queries against its own gold (`queries`, `gold`)."""

    def __init__(self, index, policy, protocol: str, result: dict, folds: int = 5):
        super().__init__(index, policy, name=system_name(protocol, folds))
        self.protocol = protocol
        self.cands, self.fold_of, self.objectives = result["cands"], result["fold_of"], result["objectives"]
        self.gold = result["gold"]

    def candidates(self, rows: np.ndarray) -> list:
        return [self.cands[int(r)] for r in rows]


class PublishedScorer:
    """Another system as published: each query ranks only the articles published no later than it (the rest
    score -inf), against the gold cut the same way (`gold`)."""

    def __init__(self, inner, days: np.ndarray, gold: dict[int, list[int]]):
        self.inner, self.gold = inner, gold
        self.day = publication_days(days)
        self.name = f"{inner.name}, {LABELS['as-published']}"

    def _mask(self, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        scores = np.array(scores.todense() if hasattr(scores, "todense") else scores, dtype=np.float64)
        later = ~(self.day[None, :] <= self.day[np.asarray(rows)][:, None])
        scores[later] = -np.inf
        return scores

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.ranked(rows)[0]

    def ranked(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if hasattr(self.inner, "ranked"):
            order, shown = self.inner.ranked(rows)
            return self._mask(rows, order), shown
        scores = self._mask(rows, self.inner.scores(rows))
        return scores, scores


class StoredTfidfScorer:
    """The TF-IDF baseline read from the index's lexical index (fitted by `lexical.fit_tfidf`, the same
    configuration and documents as `lexical_scorer("tfidf", ...)`), so evaluation does not fit it again."""

    name = "tfidf"

    def __init__(self, lexical):
        self.lexical = lexical

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.lexical.tfidf_rows(rows)


class RandomScorer:
    """Uniform random scores, reproducible for a seed: the floor any system must clear."""

    def __init__(self, size: int, seed: int = 0, name: str = "random"):
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.name = name

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.rng.random((len(rows), self.size), dtype=np.float32)


@dataclass
class QueryOutcome:
    query: str
    gold_ranks: dict[str, int]  # gold id -> 1-based rank in the full ranking
    top: list[tuple[str, float | None]]  # the best TOP_KEPT suggestions with their scores (None: a pin unscored)


@dataclass
class SystemResult:
    system: str
    overall: dict[str, float]
    per_query: list[QueryOutcome]
    recall_curve: list[float]  # mean recall@k for k = 1..CURVE_DEPTH
    seconds: float = 0.0


@dataclass
class Evaluation:
    systems: list[SystemResult]
    queries: int
    corpus_size: int
    gold_source: str
    dropped_links: int = 0
    sample: int | None = None
    seed: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    ks: tuple[int, ...] = KS  # the k the metrics at k were computed for

    def system(self, name: str) -> SystemResult:
        return next(s for s in self.systems if s.system == name)


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the n best scores, best first, ties by lower row (self must already be -inf)."""
    n = min(n, scores.shape[0])
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.lexsort((part, -scores[part]))]


def rank_system(scorer: Scorer, queries: Sequence[int], gold: dict[int, list[int]], ids: Sequence[str],
                ks: Sequence[int] = KS, progress: bool = False) -> SystemResult:
    """Score every query against the whole corpus and collect ranks, top suggestions and metrics."""
    start = time.perf_counter()
    outcomes: list[QueryOutcome] = []
    per_metric: dict[str, list[float]] = {}
    curve = np.zeros(CURVE_DEPTH)
    covered: dict[int, set[int]] = {k: set() for k in ks}
    depth = max([TOP_KEPT, *ks])
    with progress_bar(len(queries), desc=f"evaluating {scorer.name}", unit="query", enabled=progress) as bar:
        for start_row in range(0, len(queries), QUERY_BLOCK):
            block = np.asarray(queries[start_row:start_row + QUERY_BLOCK])
            scores, shown = scorer.ranked(block) if hasattr(scorer, "ranked") else (scorer.scores(block), None)
            scores = np.asarray(scores.todense() if hasattr(scores, "todense") else scores, dtype=np.float64)
            for i, q in enumerate(block):
                row_scores = scores[i]
                row_scores[q] = -np.inf
                ranks = gold_ranks(row_scores, gold[int(q)])
                top = [int(r) for r in top_rows(row_scores, depth) if np.isfinite(row_scores[r])]  # never itself
                for k in ks:
                    covered[k].update(top[:k])
                shown_scores = row_scores if shown is None else shown[i]
                for key, value in metrics_from_ranks(ranks, ks).items():
                    per_metric.setdefault(key, []).append(value)
                for r in ranks:
                    if r <= CURVE_DEPTH:
                        curve[r - 1:] += 1.0 / len(ranks)
                outcomes.append(QueryOutcome(
                    query=ids[int(q)],
                    gold_ranks={ids[g]: r for g, r in zip(gold[int(q)], ranks)},
                    top=[(ids[r], None if np.isnan(shown_scores[r]) else float(shown_scores[r]))
                         for r in top[:TOP_KEPT]],
                ))
            bar.update(len(block))
    overall = {key: float(np.mean(values)) for key, values in per_metric.items()}
    overall["queries"] = len(queries)
    for k in ks:
        overall[f"coverage@{k}"] = len(covered[k])
        overall[f"coverage@{k}_share"] = len(covered[k]) / max(1, len(ids))
    return SystemResult(
        system=scorer.name, overall=overall, per_query=outcomes,
        recall_curve=(curve / max(1, len(queries))).tolist(), seconds=time.perf_counter() - start,
    )


def select_queries(gold: dict[str, list[str]], sample: int | None, seed: int) -> list[str]:
    """Query ids in a stable order; a reproducible random subset when sample is given."""
    queries = sorted(gold)
    if sample is not None and sample < len(queries):
        queries = sorted(random.Random(seed).sample(queries, sample))
    return queries


# --- the whole run ----------------------------------------------------------------------------------


def lexical_scorer(kind: str, texts: Sequence[tuple[str, str, str]], language: str | None = None):
    """A TF-IDF or BM25 baseline fitted on (title, excerpt, body) rows in a language (the index's lexical one),
    named after its kind."""
    from ..store.lexical import BM25Ranker, TfidfRanker, lexical_document

    documents = [lexical_document(title, body or excerpt, language) for title, excerpt, body in texts]
    ranker = TfidfRanker(documents, language) if kind == "tfidf" else BM25Ranker(documents, language=language)
    ranker.name = kind
    return ranker


def one_vector_scorer(index, progress: bool = False) -> DenseScorer:
    """The naive design as a baseline: one vector per article from title + text, cut by the model at its
    input limit (256 word pieces for all-MiniLM-L6-v2), with the index's model. Embeds the whole corpus."""
    texts = [f"{title}\n{body or excerpt}".strip() for title, excerpt, body in index.data.store.texts()]
    log.info("embedding %d articles as one vector each (the one-vector baseline)", len(texts))
    vectors = index.data.embedder().encode(texts, batch_size=32, progress=progress)
    return DenseScorer(vectors, name="one-vector")


def evaluate_index(index, gold: dict[str, list[str]] | None = None, *, gold_source: str = "curated",
                   baselines: Sequence[str] = ("tfidf", "random"), ks: Sequence[int] = KS,
                   sample: int | None = None, seed: int = 0, hybrid: Sequence[float] = (),
                   policy=None, dense: bool = True, overrides: bool = True, one_vector: bool = False,
                   learned: bool = True, folds: int = 5, progress: bool = False) -> Evaluation:
    """Evaluate the index's rankings (and baselines, on the same queries) against gold.

    gold defaults to the curated `related:` lists stored with the index. Gold links to articles not in the
    index are dropped (and counted); queries left without gold are skipped. Systems: "system" (the final
    ranking under the policy), "system+overrides" (the same with the editors' pins and blocks, when there are
    any), "learned (k-fold CV)" (the learned ranking under cross-validation over the queries, seeded by `seed`;
    unless learned=False or there are too few queries), "dense" (the embedding alone), then the baselines and any
    fixed-weight hybrids.

    Every kind of link target is ranked here, whatever the policy's [links] targets: the curated lists of a
    news site name curated stubs, and the targets rule decides what a site shows, not how well it ranks.
    """
    from ..rank.policy import TARGETS, Policy

    policy = (policy or Policy()).with_links(targets=TARGETS)
    start = time.perf_counter()
    ids = index.data.store.ids()
    row_of = {i: r for r, i in enumerate(ids)}
    kept, dropped = gold_in_index(gold if gold is not None else index.data.store.curated(), row_of)
    if not kept:
        raise InputError(f"no query with gold links inside the index ({gold_source})")
    queries = select_queries(kept, sample, seed)
    query_rows = [row_of[q] for q in queries]
    gold_rows = {row_of[q]: [row_of[r] for r in kept[q]] for q in queries}
    scorers: list = [PolicyScorer(index, policy)]
    edits = index.data.overrides() if overrides else None
    if edits:
        scorers.append(PolicyScorer(index, policy, edits, name="system+overrides"))
    notes = []
    published = []  # the as-published rows of the default ranking and the lexical baselines
    if learned:
        from .training import cross_validated_candidates, learned_for, too_few_lists

        problem = too_few_lists(len(queries), policy, folds)
        if not problem:
            by_protocol = cross_validated_candidates(index, policy, gold_rows, folds, seed, progress)
            for protocol, result in by_protocol.items():
                scorers.append(CrossValidatedScorer(index, policy, protocol, result, folds))
            notes.append("learned: the objective chosen inside each fold (on the other folds' lists only), "
                         + "; ".join(f"{LABELS[p]}: " + ", ".join(f"{name} in {r['objectives'].count(name)} of {folds}"
                                                                  for name in sorted(set(r["objectives"])))
                                     for p, r in by_protocol.items() if p != "as-published")
                         + ("; as published: the new articles' models" if "as-published" in by_protocol else "")
                         + f"; [ranking] learned_for is {learned_for(policy)}")
            if "as-published" in by_protocol:
                result = by_protocol["as-published"]
                left = result["left_out"]
                notes.append(f"as published: {len(result['gold'])} of {len(queries)} queries, each ranked among "
                             f"the articles published no later than it with the lists of older ones; left out of "
                             f"its means: {left['undated']} without a date, {left['no_gold_left']} whose gold holds "
                             "nothing published no later than them")
                published.append(PublishedScorer(scorers[0], index.data.article_features().days, result["gold"]))
        else:
            notes.append(f"learned ranking not evaluated: {problem}")
    dense_scorer = DenseScorer(index.data.vectors.vectors(), name="dense") if dense or hybrid else None
    if dense:
        scorers.append(dense_scorer)
    if one_vector:
        scorers.append(one_vector_scorer(index, progress))
    lexical = index.data.lexical
    texts = index.data.store.texts() if "bm25" in baselines or ("tfidf" in baselines and lexical is None) else []
    language = lexical.language if lexical is not None else None  # the baselines' stop words
    for name in baselines:
        if name == "tfidf" and lexical is not None and lexical.count == len(ids):
            scorers.append(StoredTfidfScorer(lexical))  # the same fit, stored with the index
        elif name in ("tfidf", "bm25"):
            log.info("fitting the %s baseline on %d articles", name, len(ids))
            scorers.append(lexical_scorer(name, texts, language))
        elif name == "random":
            scorers.append(RandomScorer(len(ids), seed=seed))
        else:
            raise InputError(f"unknown baseline {name!r} (tfidf, bm25, random)")
    if hybrid:
        from ..rank.fusion import FusionScorer

        lexical = next((s for s in scorers if getattr(s, "name", "") == "tfidf"), None)
        if lexical is None:
            texts = texts or index.data.store.texts()
            lexical = lexical_scorer("tfidf", texts, language)
        scorers += [FusionScorer(dense_scorer, lexical, w) for w in hybrid]
    if published:
        days, cut = index.data.article_features().days, published[0].gold
        published += [PublishedScorer(s, days, cut) for s in scorers if s.name in ("tfidf", "bm25")]
    scorers += published
    results = []
    for s in scorers:  # the as-published rows rank their own queries against their own gold
        own = getattr(s, "gold", gold_rows)
        results.append(rank_system(s, [r for r in query_rows if r in own], own, ids, ks, progress=progress))
    model = index.learned_model(policy)
    if model is not None:
        cv = model.cv
        notes.append(f"system is the default ranking; the learned ranking in use measured under {cv.get('folds')}-fold "
                     f"cross-validation over {cv.get('learned', {}).get('queries')} queries at training: recall@10 "
                     f"{cv.get('learned', {}).get('recall@10')}, MRR {cv.get('learned', {}).get('mrr')} (default "
                     f"{cv.get('default', {}).get('recall@10')} / {cv.get('default', {}).get('mrr')})")
    if len(queries) < 20:
        notes.append(f"only {len(queries)} queries: these figures are not reliable")
    return Evaluation(systems=results, queries=len(queries), corpus_size=len(ids), gold_source=gold_source,
                      dropped_links=dropped, sample=sample, seed=seed if sample else None,
                      seconds=time.perf_counter() - start, notes=notes, ks=tuple(ks))
