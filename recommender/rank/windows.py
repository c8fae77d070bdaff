"""The window-level score: how well two articles' passages match, read from every window's vector.

The article vector averages a head and at most eight windows spread over the body, so a long page that shares one
section with another barely moves their cosine. The index also stores every window's vector (the head first;
`embed.vectorize.Windows`), and a pair is scored by the symmetric mean of "each window's best match in the other
article" (late interaction at window level, like ColBERT's MaxSim over passages instead of tokens):

    window(q, c) = ( mean_i max_j cos(q_i, c_j) + mean_j max_i cos(q_i, c_j) ) / 2

The ranker reads a query's whole row (its score with every article) as it reads a TF-IDF row: for the z-score's
mean and deviation and for the window candidate pool. A row costs one product of the query's windows with every
window. The products are exact: windows are stored as 8-bit codes with a scale each (store.windowfiles), so the
dot product of two code vectors is a whole number below 2^24 (384 x 127 x 127), which a float32 sum holds exactly
in any order; it is then scaled (above 1,040 dimensions the products are summed in float64, exact up to 2^53).
A row is therefore the same numbers whether a query computes it alone or the batch in a group, with any BLAS
kernel (tested).

Measured on python_docs (long pages) and MDN (short ones): docs/ranking.md, "Window-level score".
"""

from __future__ import annotations

import numpy as np

from ..store.compiledtopk import ACTIVE
from ..store.compiledscores import stored_products

BLOCK_WINDOWS = 8_192  # corpus windows per product (a float32 block of 12.6 MB at 384 dimensions)
GROUP_WINDOWS = 256  # query windows per product in the batch (rows of one matrix product)
PAIR_BLOCK = 256  # stored windows converted from their codes at a time for a query's pairs with its candidates
COPY_LIMIT = 2 << 30  # bytes of a float copy of the stored codes the batch keeps (about 1.4M windows at 384-d)


class WindowScores:
    """Window-level scores over an index's stored windows: int8 `codes` (windows x dim), float32 `scales` (what a
    code is worth, per window) and `offsets` (article i owns windows offsets[i]:offsets[i + 1]). The batch
    computes rows for groups of queries at once (one matrix product per block of corpus windows)."""

    def __init__(self, codes: np.ndarray, scales: np.ndarray, offsets: np.ndarray, *, keep_copy: bool = False):
        self.codes = np.asarray(codes)  # often memory-mapped (a plain view of it: no memmap wrapper per lookup)
        self.scales = np.asarray(scales, dtype=np.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n = len(self.offsets) - 1
        self.starts = self.offsets[:-1]
        self.counts = np.diff(self.offsets)
        if self.n and (self.counts < 1).any():
            raise ValueError("every article needs at least one window (its head)")
        # the products' type: float32 holds every sum of dim products of two codes exactly below 2^24
        self.exact = np.float32 if codes.shape[1] * 127 * 127 < 2 ** 24 else np.float64
        self._copy = None
        if keep_copy and codes.size * 4 <= COPY_LIMIT:  # the batch: one copy instead of a conversion per group
            self._copy = np.asarray(codes, dtype=self.exact)
        elif keep_copy:  # too large for a float copy: the 8-bit codes held in memory while the budget lasts
            from ..store.resident import held

            self.codes, self.scales = held(self.codes), held(self.scales)
            self.offsets = held(self.offsets)
            self.starts = self.offsets[:-1]

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, offsets: np.ndarray, **kwargs) -> "WindowScores":
        """Over window vectors not stored yet (quantised as the index stores them)."""
        from ..store.windowfiles import quantize

        return cls(*quantize(vectors), offsets, **kwargs)

    @property
    def count(self) -> int:
        return self.n

    def exact_codes(self) -> np.ndarray:
        """Every stored window's codes as numbers of the products' type (the batch's copy, else converted)."""
        return self._copy if self._copy is not None else np.asarray(self.codes, dtype=self.exact)

    def windows_of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(codes as numbers of the products' type, scales) of one article's windows."""
        a, b = self.offsets[row], self.offsets[row + 1]
        codes = self._copy[a:b] if self._copy is not None else np.asarray(self.codes[a:b], dtype=self.exact)
        return codes, self.scales[a:b]

    def blocks(self):
        total = len(self.codes)
        for start in range(0, total, BLOCK_WINDOWS):
            stop = min(total, start + BLOCK_WINDOWS)
            block = self._copy[start:stop] if self._copy is not None else \
                np.asarray(self.codes[start:stop], dtype=self.exact)
            yield start, block, self.scales[start:stop]

    def _group(self, queries: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """(window scores, max-sim): (len(queries) x n) each, for a group of queries' (codes, scales).

        Products are laid out stored windows x query windows, so that the reductions over an article's windows
        (many short runs) run along whole rows."""
        sizes = [len(codes) for codes, _ in queries]
        stacked = np.ascontiguousarray(np.concatenate([codes for codes, _ in queries]), dtype=self.exact)
        worth = np.concatenate([scales for _, scales in queries]).astype(np.float32)
        firsts = np.concatenate(([0], np.cumsum(sizes)))
        best = np.full((self.n, len(stacked)), -np.inf, dtype=np.float32)  # per article: each query window's best
        backward = np.empty((len(queries), self.n))  # per article: the mean of its windows' best query match
        matched = np.empty((len(queries), len(self.codes)), dtype=np.float32)  # each stored window's best match
        for start, block, scales in self.blocks():
            sims = (block @ stacked.T).astype(np.float32, copy=False)  # whole numbers, exact
            sims *= scales[:, None]
            sims *= worth[None, :]
            by_query = np.ascontiguousarray(sims.T)  # query windows x stored windows: whole rows again
            for i in range(len(queries)):
                matched[i, start:start + len(block)] = by_query[firsts[i]:firsts[i + 1]].max(axis=0)
            # the articles whose windows fall in this block (an article may straddle two blocks)
            first = int(np.searchsorted(self.offsets, start, side="right") - 1)
            last = int(np.searchsorted(self.offsets, start + len(block), side="left"))
            bounds = np.clip(self.offsets[first:last + 1], start, start + len(block)) - start
            cuts = bounds[:-1]
            valid = bounds[1:] > cuts
            if valid.any():
                cols = np.arange(first, last)[valid]
                runs = segments(sims, cuts[valid], (bounds[1:] - cuts)[valid], np.maximum)
                best[cols] = np.maximum(best[cols], runs)
        backward[:] = segments(matched.astype(np.float64).T, self.starts, self.counts, np.add).T / self.counts
        best = np.ascontiguousarray(best.T)  # query windows x articles
        score = np.empty((len(queries), self.n), dtype=np.float32)
        top = np.empty((len(queries), self.n), dtype=np.float32)
        for i in range(len(queries)):
            mine = best[firsts[i]:firsts[i + 1]]
            forward = mine.astype(np.float64).sum(axis=0) / sizes[i]  # row after row: the same sum in any group
            score[i] = (forward + backward[i]) / 2
            top[i] = mine.max(axis=0)
        return score, top

    def rows(self, rows: np.ndarray, with_max: bool = False):
        """(len(rows) x n) scores of stored articles against every article; with_max: also the best single
        window match of each pair (max-sim, a signal of the learned ranking)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.n), dtype=np.float32)
        best = np.empty((len(rows), self.n), dtype=np.float32)
        i = 0
        while i < len(rows):
            group, size = [], 0
            while i + len(group) < len(rows) and (not group or size + self.counts[rows[i + len(group)]]
                                                  <= GROUP_WINDOWS):
                size += int(self.counts[rows[i + len(group)]])
                group.append(int(rows[i + len(group)]))
            out[i:i + len(group)], best[i:i + len(group)] = self._group([self.windows_of(r) for r in group])
            i += len(group)
        return (out, best) if with_max else out

    def dequantised(self) -> np.ndarray:
        """Every stored window as float32 (code x scale): what the window ANN index is built from."""
        out = np.empty(self.codes.shape, dtype=np.float32)
        for start, block, scales in self.blocks():
            out[start:start + len(block)] = block * scales[:, None]
        return out

    def positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the stored windows of `rows`, each row's run contiguous; each run's first place in that list; each
        run's length)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.counts[rows]
        firsts = np.concatenate(([0], np.cumsum(counts)))
        at = np.repeat(self.starts[rows] - firsts[:-1], counts) + np.arange(int(firsts[-1]))
        return at, firsts[:-1], counts

    def gather(self, rows: np.ndarray, convert: bool = True) -> tuple:
        """The stored windows of `rows`, contiguous (codes as numbers of the products' type, scales, each row's
        first window and count): what `pairs` scores a query against (the ranker keeps its sample's). convert
        False: the codes stay 8-bit (a quarter of the memory; `pairs_many` converts them a block at a time)."""
        at, firsts, counts = self.positions(rows)
        # from the 8-bit codes, converted after: a quarter of the memory read of the float copy's rows
        stored = self.codes[at]
        return stored.astype(self.exact) if convert else stored, self.scales[at], firsts, counts

    def pairs(self, codes: np.ndarray, scales: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
        """(window scores, max-sim) of one query's windows (codes as numbers of the products' type, scales) with
        the given articles only (`rows`, or what `gather` made of them): the numbers of the query's full row for
        them (the same products; sums of a run in NumPy's order, equal to float rounding)."""
        return self.pairs_many([(codes, scales)], rows)[0]

    def pairs_many(self, queries: list[tuple[np.ndarray, np.ndarray]], rows) -> list[tuple[np.ndarray, np.ndarray]]:
        """`pairs` of several queries against the same articles, with one matrix product. rows: the articles,
        what `gather` made of them (many queries: one product with their converted windows; a few queries, with
        convert=False: their 8-bit codes converted a block at a time, a quarter of the memory read: a query by id's
        sample, gathered once) or what `positions` made of them (a few queries: their 8-bit codes gathered, then
        converted a block at a time)."""
        stacked = np.ascontiguousarray(np.concatenate([codes for codes, _ in queries]), dtype=self.exact)
        worth = np.concatenate([scales for _, scales in queries]).astype(np.float32)
        # query windows x stored windows, whole numbers, exact in any layout
        if isinstance(rows, tuple) and len(rows) == 4:  # what `gather` made
            stored, stored_scales, firsts, counts = rows
            if stored.dtype == self.exact:  # converted (a block's queries at once)
                sims = (stacked @ stored.T).astype(np.float32, copy=False)
            else:  # 8-bit: stored windows x query windows is the faster product, turned after
                sims = self._stored_products(stored, None, stacked)
        else:  # one query's few windows: as above, from the stored windows' codes gathered here
            at, firsts, counts = rows if isinstance(rows, tuple) else self.positions(rows)
            stored_scales = self.scales[at]
            sims = self._stored_products(self.codes, at, stacked)
        if not len(counts):
            return [(np.zeros(0, np.float32), np.zeros(0, np.float32)) for _ in queries]
        sizes = [len(codes) for codes, _ in queries]
        kernel = ACTIVE["window_maxima"]
        if kernel is not None:  # scaled and reduced to their maxima in one compiled pass (store.compiledscores)
            best_all = np.empty((len(sims), len(counts)), dtype=np.float32)
            matched = np.empty((len(sizes), sims.shape[1]), dtype=np.float32)
            kernel(sims, np.ascontiguousarray(stored_scales, dtype=np.float32), worth,
                   np.concatenate(([0], np.cumsum(sizes))).astype(np.int64), np.asarray(firsts, np.int64),
                   np.asarray(counts, np.int64), best_all, matched)
            return self._combine(best_all, list(matched), sizes, firsts, counts)
        sims *= stored_scales[None, :]
        sims *= worth[:, None]
        return self._reduce(sims, sizes, firsts, counts)

    def _stored_products(self, codes: np.ndarray, at: np.ndarray | None, stacked: np.ndarray) -> np.ndarray:
        """(query windows x stored windows) float32 products of the query windows `stacked` with the 8-bit `codes`
        at `at` (None: every row of `codes`): in the compiled loop where the process runs it (store.compiledscores:
        read where they lie, no copy), else gathered, converted by blocks and multiplied in NumPy. The same
        whole numbers either way."""
        kernel = ACTIVE["window_products"]
        if kernel is not None and self.exact is np.float32:
            return stored_products(kernel, codes, at, stacked)
        return np.ascontiguousarray(self._products(codes if at is None else codes[at], stacked).T, dtype=np.float32)

    def _products(self, stored: np.ndarray, stacked: np.ndarray) -> np.ndarray:
        """The products of stored windows given by their 8-bit codes (rows) with the query windows `stacked`
        (columns), the codes converted PAIR_BLOCK windows at a time into a block that stays in the cache while BLAS
        reads it: about half the time of converting them all, then multiplying."""
        out = np.empty((len(stored), len(stacked)), dtype=self.exact)
        block = np.empty((min(PAIR_BLOCK, len(stored)), self.codes.shape[1]), dtype=self.exact)
        for a in range(0, len(stored), PAIR_BLOCK):
            codes = stored[a:a + PAIR_BLOCK]
            np.copyto(block[:len(codes)], codes)
            np.matmul(block[:len(codes)], stacked.T, out=out[a:a + len(codes)])
        return out

    def pairs_from(self, products: np.ndarray, positions: tuple) -> tuple[np.ndarray, np.ndarray]:
        """`pairs` of one query from its similarities with every stored window (query windows x stored windows, as
        ExactWindowSearch computes them: the same numbers as `pairs_many`'s), for the articles whose `positions`
        are given: no product at all."""
        at, firsts, counts = positions
        if not len(counts):
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return self._reduce(products[:, at], [len(products)], firsts, counts)[0]

    @staticmethod
    def _reduce(sims: np.ndarray, sizes: list[int], firsts: np.ndarray, counts: np.ndarray) -> list[tuple]:
        """(window scores, max-sim) of each query from its similarities (query windows x the stored windows of
        some articles, each article's run of `counts` from `firsts`); `sizes`: each query's windows, in order."""
        # query windows x rows: each one's best match there (a maximum over a short axis costs a call per row, so
        # a query's windows are whole rows, reduced along them)
        best_all = np.maximum.reduceat(sims, firsts, axis=1)
        starts = np.concatenate(([0], np.cumsum(sizes)))
        # each stored window's best match among each query's windows
        matched = [sims[a:b].max(axis=0) for a, b in zip(starts[:-1], starts[1:])]
        return WindowScores._combine(best_all, matched, sizes, firsts, counts)

    @staticmethod
    def _combine(best_all: np.ndarray, matched: list, sizes: list[int], firsts: np.ndarray,
                 counts: np.ndarray) -> list[tuple]:
        """`_reduce`'s figures from its maxima: each query window's best match in each article (best_all: query
        windows x articles) and each stored window's best match among each query's windows (`matched`)."""
        out, a = [], 0
        for size, best_match in zip(sizes, matched):
            best = best_all[a:a + size]
            forward = best.astype(np.float64).sum(axis=0) / size  # row after row: the same in any group
            a += size
            backward = np.add.reduceat(best_match.astype(np.float64), firsts) / counts
            out.append((((forward + backward) / 2).astype(np.float32), best.max(axis=0)))
        return out

    def text_rows(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1 x n window scores, 1 x n max-sim) of new text's window vectors (quantised as the stored ones)."""
        from ..store.windowfiles import quantize

        codes, scales = quantize(vectors)
        return self._group([(codes.astype(self.exact), scales)])


def stored_window_scores(folder, manifest, keep_copy: bool = False) -> WindowScores | None:
    """Over an index version's stored windows (store.windowfiles), or None for an index without them. The batch
    keeps a float32 copy (keep_copy); a query converts block by block from the mapped file."""
    from ..store.windowfiles import read_windows

    stored = read_windows(folder, manifest)
    return None if stored is None else WindowScores(*stored, keep_copy=keep_copy)


def segments(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, op) -> np.ndarray:
    """op over each run of rows values[starts[i]:starts[i] + counts[i]] (every count at least 1), in row order.
    One vectorised step per position in a run instead of one call per run: most runs are an article's few
    windows, and numpy's reduceat pays a call for each of thousands of runs."""
    out = values[starts].copy()
    for j in range(1, int(counts.max(initial=1))):
        more = np.flatnonzero(counts > j)
        out[more] = op(out[more], values[starts[more] + j])
    return out


def pair_scores(query: np.ndarray, candidate: np.ndarray) -> float:
    """The window score of two articles from their window matrices (float32): the reference for tests and
    explanations."""
    sims = np.asarray(query, np.float32) @ np.asarray(candidate, np.float32).T
    return float((sims.max(axis=1).mean() + sims.max(axis=0).mean()) / 2)
