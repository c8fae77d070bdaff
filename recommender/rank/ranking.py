"""The hybrid score: dense cosine, the window-level score, TF-IDF cosine and mentions, each turned into a per-query
z-score over the whole corpus and mixed with the policy's weights.

A z-score says how far a candidate stands above the query's typical article, in standard deviations, so the
signals share one scale whatever their raw ranges. The corpus statistics are exact without scoring the
whole corpus densely: for the embedding, mean = q·μ and E[s²] = qᵀ(VᵀV/n)q; the lexical and mention rows are
sparse products computed in full anyway (they also supply the lexical candidates); the window row
(recommender.rank.windows) is computed in full too.

Candidates per query: the `candidates` best by dense cosine (from the vector index, or exact by matrix product
when no index is given), the `candidates` best by window score, the `candidates` best by TF-IDF, every article
the query names or is named by, and (for a site with tags) the `candidates` sharing the rarest tags with it.
Everything else ranks below them.

    ranker = HybridRanker(vectors, lexical, Ranking(dense=0.5, lexical=0.4, mention=0.1))
    for cand in ranker.score_rows(np.array([0, 1])):
        print(cand.rows[:5], cand.score[:5])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .policy import Ranking

if TYPE_CHECKING:  # a query by id scores over mapped arrays (querydata) and never imports SciPy
    from ..store.lexindex import LexicalIndex

MAX_BLOCK_CELLS = 40_000_000  # query rows x corpus size per block of dense score rows (about 160 MB)
PARTS = ("dense", "window", "lexical", "mention")


@dataclass
class Candidates:
    """One query's candidates: rows, final scores (weighted z), and each part (raw value and z-score)."""

    query: int  # the query's row (-1 for text not in the index)
    rows: np.ndarray
    score: np.ndarray
    raw: dict[str, np.ndarray]
    z: dict[str, np.ndarray]

    def take(self, order: np.ndarray) -> "Candidates":
        return Candidates(self.query, self.rows[order], self.score[order],
                          {k: v[order] for k, v in self.raw.items()}, {k: v[order] for k, v in self.z.items()})


def zscore(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (values - mean) / np.where(std > 1e-12, std, 1.0)


def row_stats(dense_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each row (one query's scores over the corpus)."""
    return dense_rows.mean(axis=1, keepdims=True), dense_rows.std(axis=1, keepdims=True)


def dense_moments(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The embedding's corpus mean vector and second moment VᵀV/n (float32), what the dense z-score needs."""
    n = len(vectors)
    mean = vectors.mean(axis=0) if n else np.zeros(vectors.shape[1], np.float32)
    gram = (vectors.T.astype(np.float64) @ vectors.astype(np.float64)) / max(1, n)
    return mean, gram.astype(np.float32)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique of a 1-d integer array, without the numpy.ma import that np.unique costs a fresh process."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def block_size(n: int, wanted: int = 256) -> int:
    return max(1, min(wanted, MAX_BLOCK_CELLS // max(1, n)))


class HybridRanker:
    """Scores candidates for stored articles (by row) or for new text, with the policy's weights."""

    def __init__(self, vectors: np.ndarray, lexical: LexicalIndex | None, ranking: Ranking = Ranking(),
                 ann=None, frozen=None, rescorer=None, moments=None, tag_pool=None, windows=None):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.n = len(self.vectors)
        self.lexical = lexical
        self.ranking = ranking
        self.ann = ann  # optional: anything with search(queries, depth); else exact dense candidates
        # optional: recommender.rank.windows.WindowScores over the same rows
        self.windows = windows if windows is not None and windows.count == self.n else None
        weights = ranking.weights(windows=self.windows is not None)  # none stored: an approximate index
        if lexical is None:
            weights = {"dense": 1.0, "window": 0.0, "lexical": 0.0, "mention": 0.0}
        self.weights = weights
        # moments: (mean, second moment) precomputed at build (recommender.rank.querydata), else computed here
        self.mean_vector, self.second_moment = moments if moments is not None else dense_moments(self.vectors)
        self.rescorer = rescorer  # optional: Candidates -> Candidates (the learned ranking, recommender.rank.learned)
        self.tag_pool = tag_pool  # optional: (query rows, depth) -> rows sharing a rare tag (signals.tag_pool)
        self.frozen = frozen  # corpus statistics kept from the last full rebuild (recommender.batch.incremental)
        if frozen is not None:
            self.mean_vector, self.second_moment = frozen.mean_vector, frozen.second_moment

    # --- dense part ------------------------------------------------------------------------------------

    def standing(self) -> tuple[np.ndarray, np.ndarray]:
        """Every article's own average and standard deviation of its embedding cosine to the corpus (from the same
        moments as the dense z-score), computed once: what the reverse z-score of a link reads (linking.py)."""
        if getattr(self, "_standing", None) is None:
            mean = self.vectors @ self.mean_vector
            second = np.einsum("nd,nd->n", self.vectors @ self.second_moment, self.vectors)
            self._standing = mean, np.sqrt(np.maximum(second - mean ** 2, 1e-12))
        return self._standing

    def dense_stats(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # einsum's own loops, not BLAS: each query's figures are the same numbers whether it is scored alone (a
        # query) or in a block (the batch), so a stored list equals what a query computes
        mean = np.einsum("qd,d->q", queries, self.mean_vector)
        second = np.einsum("qd,de,qe->q", queries, self.second_moment, queries)
        std = np.sqrt(np.maximum(second - mean ** 2, 0.0))
        return mean[:, None], std[:, None]

    def dense_candidates(self, queries: np.ndarray, depth: int) -> np.ndarray:
        depth = min(self.n, depth)
        if self.ann is not None:
            return self.ann.search(queries, depth)[1]
        scores = queries @ self.vectors.T
        part = np.argpartition(-scores, depth - 1, axis=1)[:, :depth] if depth < self.n else np.tile(
            np.arange(self.n), (len(queries), 1))
        return part

    # --- scoring ---------------------------------------------------------------------------------------

    def score_rows(self, rows: np.ndarray) -> list[Candidates]:
        """Candidates of stored articles, best first, the article itself excluded."""
        out: list[Candidates] = []
        rows = np.asarray(rows, dtype=np.int64)
        step = block_size(self.n)
        for start in range(0, len(rows), step):
            block = rows[start:start + step]
            lexical = self.lexical.tfidf_rows(block) if self._uses("lexical") else None
            mention = self.lexical.mention_rows(block) if self._uses("mention") else None
            window = self.windows.rows(block, with_max=True) if self._uses("window") else None
            out.extend(self._score(self.vectors[block], block, lexical, mention, window))
        return out

    def score_text(self, vector: np.ndarray, document: str | None, exclude: set[int] = frozenset(),
                   windows: np.ndarray | None = None) -> Candidates:
        """Candidates for new text (its embedding, its window vectors for the window part and its words for the
        lexical part); no mention part."""
        lexical = window = None
        if self._uses("lexical") and document:
            lexical = self.lexical.tfidf_for_text(document)[None, :]
        if self._uses("window") and windows is not None and len(windows):
            window = self.windows.text_rows(windows)
        cand = self._score(np.asarray(vector, np.float32)[None, :], np.array([-1]), lexical, None, window)[0]
        keep = np.array([r not in exclude for r in cand.rows], dtype=bool)
        return cand.take(np.flatnonzero(keep))

    def _uses(self, part: str) -> bool:
        if part == "window":
            return self.windows is not None and self.weights.get(part, 0) > 0
        return self.lexical is not None and self.weights.get(part, 0) > 0 and self.lexical.count == self.n

    def _score(self, queries: np.ndarray, query_rows: np.ndarray, lexical: np.ndarray | None,
               mention: np.ndarray | None, window: tuple | None = None) -> list[Candidates]:
        """`window`: (window score rows, max-sim rows) when the window part is used."""
        depth = self.ranking.candidates + 1
        dense_mean, dense_std = self.dense_stats(queries)
        dense_cands = self.dense_candidates(queries, depth)
        if lexical is not None:
            lex_mean, lex_std = row_stats(lexical)
            lex_depth = min(self.n, depth)
            lex_cands = np.argpartition(-lexical, lex_depth - 1, axis=1)[:, :lex_depth]
            if self.frozen is not None:
                lex_mean, lex_std = self.frozen.row_stats("lexical", query_rows, lex_mean, lex_std)
        if mention is not None:
            men_mean, men_std = row_stats(mention)
            if self.frozen is not None:
                men_mean, men_std = self.frozen.row_stats("mention", query_rows, men_mean, men_std)
        if window is not None:
            window, window_max = window
            win_mean, win_std = row_stats(window)
            max_mean, max_std = row_stats(window_max)
            win_depth = min(self.n, depth)
            win_cands = np.argpartition(-window, win_depth - 1, axis=1)[:, :win_depth]
            if self.frozen is not None:
                win_mean, win_std = self.frozen.row_stats("window", query_rows, win_mean, win_std)
                max_mean, max_std = self.frozen.row_stats("window_max", query_rows, max_mean, max_std)
        tagged = self.tag_pool(query_rows, depth) if self.tag_pool is not None and query_rows[0] >= 0 else None
        results = []
        for i, q in enumerate(query_rows):
            pool = [dense_cands[i]]
            if tagged is not None:
                pool.append(tagged[i])
            if lexical is not None:
                pool.append(lex_cands[i])
            if window is not None:
                pool.append(win_cands[i])
            if mention is not None:
                pool.append(np.flatnonzero(mention[i]))
            cand = sorted_unique(np.concatenate(pool))
            cand = cand[(cand >= 0) & (cand != q)]
            raw = {"dense": self.vectors[cand] @ queries[i]}
            z = {"dense": zscore(raw["dense"], dense_mean[i], dense_std[i])}
            if window is not None:
                raw["window"] = window[i, cand]
                z["window"] = zscore(raw["window"], win_mean[i], win_std[i])
                raw["window_max"] = window_max[i, cand]  # a signal of the learned ranking, not a weighted part
                z["window_max"] = zscore(raw["window_max"], max_mean[i], max_std[i])
            if lexical is not None:
                raw["lexical"] = lexical[i, cand]
                z["lexical"] = zscore(raw["lexical"], lex_mean[i], lex_std[i])
            if mention is not None:
                raw["mention"] = mention[i, cand]
                z["mention"] = zscore(raw["mention"], men_mean[i], men_std[i])
            if self.frozen is not None:  # the weakest member of each candidate pool, and the closest article
                self.frozen.pool_bounds(int(q), dense=float((self.vectors[dense_cands[i]] @ queries[i]).min()),
                                        lexical=float(lexical[i, lex_cands[i]].min()) if lexical is not None
                                        else None, closest=float(raw["dense"].max()) if len(cand) else -1.0,
                                        window=float(window[i, win_cands[i]].min()) if window is not None
                                        else None)
            total = sum(self.weights.get(name, 0.0) * z[name] for name in z)
            norm = sum(self.weights.get(name, 0.0) for name in z)
            score = (total / norm).astype(np.float32)
            order = np.lexsort((cand, -score))
            result = Candidates(int(q), cand, score, raw, z).take(order)
            results.append(self.rescorer(result) if self.rescorer is not None else result)
        return results
