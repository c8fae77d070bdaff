"""The window-level score: how well two articles' passages match, read from every window's vector.

The article vector averages a head and at most eight windows spread over the body, so a long page that shares one
section with another barely moves their cosine. The index also stores every window's vector (the head first;
`embed.vectorize.Windows`), and a pair is scored by the symmetric mean of "each window's best match in the other
article" (late interaction at window level, like ColBERT's MaxSim over passages instead of tokens):

    window(q, c) = ( mean_i max_j cos(q_i, c_j) + mean_j max_i cos(q_i, c_j) ) / 2

The ranker reads a query's whole row (its score with every article) as it reads a TF-IDF row: for the z-score's
mean and deviation and for the window candidate pool. A row costs one product of the query's windows with every
window (float32, in fixed blocks of corpus windows, so a row is the same numbers in a query and in the batch).

Measured on python_docs (long pages) and MDN (short ones): docs/ranking.md, "Window-level score".
"""

from __future__ import annotations

import numpy as np

BLOCK_WINDOWS = 16_384  # corpus windows per product (fixed: the same blocks, the same float32 sums)


class WindowScores:
    """Window-level scores over an index's stored windows (float16 `vectors`, `offsets` per article)."""

    def __init__(self, vectors: np.ndarray, offsets: np.ndarray, *, keep_float32: bool = False):
        self.vectors = vectors  # (windows x dim) float16, often memory-mapped
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n = len(self.offsets) - 1
        self.starts = self.offsets[:-1]
        self.counts = np.diff(self.offsets)
        if self.n and (self.counts < 1).any():
            raise ValueError("every article needs at least one window (its head)")
        self._float32 = None
        if keep_float32:  # the batch scores thousands of rows: convert once instead of once per row
            self._float32 = np.asarray(vectors, dtype=np.float32)

    @property
    def count(self) -> int:
        return self.n

    def windows_of(self, row: int) -> np.ndarray:
        return np.asarray(self.vectors[self.offsets[row]:self.offsets[row + 1]], dtype=np.float32)

    def _blocks(self):
        total = len(self.vectors)
        for start in range(0, total, BLOCK_WINDOWS):
            stop = min(total, start + BLOCK_WINDOWS)
            if self._float32 is not None:
                yield start, self._float32[start:stop]
            else:
                yield start, np.asarray(self.vectors[start:stop], dtype=np.float32)

    def row_of_windows(self, query: np.ndarray) -> np.ndarray:
        """Scores (n, float32) of windows `query` (k x dim float32) against every stored article."""
        return self._row(query)[0]

    def _row(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window score, best single window match) of `query` against every stored article."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        best_in_query = np.empty(len(self.vectors), dtype=np.float32)  # each stored window's best query match
        forward = np.full((len(query), self.n), -np.inf, dtype=np.float32)  # each query window's best per article
        for start, block in self._blocks():
            sims = query @ block.T
            best_in_query[start:start + len(block)] = sims.max(axis=0)
            # the articles whose windows fall in this block (an article may straddle two blocks)
            first = int(np.searchsorted(self.offsets, start, side="right") - 1)
            last = int(np.searchsorted(self.offsets, start + len(block), side="left"))
            bounds = np.clip(self.offsets[first:last + 1], start, start + len(block)) - start
            cuts = bounds[:-1]
            valid = bounds[1:] > cuts
            if valid.any():
                part = np.maximum.reduceat(sims, cuts[valid], axis=1)
                cols = np.arange(first, last)[valid]
                forward[:, cols] = np.maximum(forward[:, cols], part)
        forward_mean = forward.mean(axis=0)
        backward_mean = np.add.reduceat(best_in_query, self.starts) / self.counts
        return ((forward_mean + backward_mean) / 2).astype(np.float32), forward.max(axis=0)

    def rows(self, rows: np.ndarray, with_max: bool = False):
        """(len(rows) x n) scores of stored articles against every article (each row computed alone); with_max:
        also the best single window match of each pair (max-sim, a signal of the learned ranking)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.n), dtype=np.float32)
        best = np.empty((len(rows), self.n), dtype=np.float32)
        for i, row in enumerate(rows):
            out[i], best[i] = self._row(self._own(row))
        return (out, best) if with_max else out

    def text_rows(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1 x n window scores, 1 x n max-sim) of new text's windows."""
        score, best = self._row(query)
        return score[None, :], best[None, :]

    def _own(self, row: int) -> np.ndarray:
        if self._float32 is not None:
            return self._float32[self.offsets[row]:self.offsets[row + 1]]
        return self.windows_of(row)


def pair_scores(query: np.ndarray, candidate: np.ndarray) -> float:
    """The window score of two articles from their window matrices (float32): the reference for tests and
    explanations."""
    sims = np.asarray(query, np.float32) @ np.asarray(candidate, np.float32).T
    return float((sims.max(axis=1).mean() + sims.max(axis=0).mean()) / 2)
