"""The two-stage ranking's first stage: each query's candidates from indexes built for top-k, and each part's
values and z-statistics on those candidates alone, at a cost that does not follow the corpus size.

* lexical: the query's TF-IDF row retrieves its top-k documents from the posting lists (store.lextopk: exact
  MaxScore while its lists hold at most EXACT_POSTINGS postings, else the heads of impact-ordered lists, a bounded
  read); the candidates' cosines are exact (sparse dot products with their rows). The row's mean is exact by
  algebra (mean = q·μ, μ the corpus's mean TF-IDF row); its mean square is exact over the query's pool and
  measured on a fixed, seeded sample of rows for the rest (`stratified`).
* mention: the query's own row of the mention matrix (both directions) is sparse: read from its postings; its mean
  and deviation are exact (sum and sum of squares over n). Only its entries above a cut are candidates
  (`mention_pool`: at most MENTION_POOL_FACTOR x `depth`), so a page every other page names does not bring them
  all in; the others get their mention value when another pool brings them.
* window (recommender.rank.windowstage): each query window retrieves its nearest stored windows; their articles
  are scored exactly and the best `depth` form the pool (`pool_of`). Mean and mean square (of the window score
  and of max-sim) are exact over the pool and measured on the fixed sample for the rest (`stratified_rows`).

On a corpus no larger than a sample, the sample is every row: the statistics are the full row's and the window
pool is the exact top of the window row. The errors of the estimates on MDN: docs/scale.md, "Two-stage ranking".
"""

from __future__ import annotations

import numpy as np

from ..common.blocks import ranges, runs
from ..store.compiledscores import row_dots
from ..store.compiledtopk import ACTIVE
from .topk import stable_order

LEXICAL_SAMPLE = 8192  # rows whose TF-IDF cosines give a lexical row's mean square (beyond its pool)
SAMPLE_SEED = 20261205
EXACT_POSTINGS = 200_000  # a query whose terms' postings total more: lexical candidates from the lists' heads
IMPACT_BUDGET = 65_536  # postings read then (store.lextopk.ImpactTopK; shared by squared weight)
IMPACT_MIN_PER_TERM = 64  # postings read at least of each term then (its whole list when shorter)
# a query's mention pool holds at most this many times a pool's depth (mention_pool): on MDN a quarter of it moved
# the learned ranking's recall@10 under the `new` protocol by -0.005, this by -0.002 (docs/scale.md)
MENTION_POOL_FACTOR = 4


def sample_rows(n: int, size: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """A fixed, seeded sample of `size` rows of n (every row when n <= size), sorted."""
    if n <= size:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)).astype(np.int64)


def _gather(indptr, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of every stored entry of `rows` in CSR order, the length of each row)."""
    begins = np.asarray(indptr[rows], dtype=np.int64)
    lengths = np.asarray(indptr[rows + 1], dtype=np.int64) - begins
    return ranges(begins, lengths), lengths


def lexical_sample(tfidf: tuple, n: int, vocabulary: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The lexical sample's rows (sample_rows(n, LEXICAL_SAMPLE)) by term, from TF-IDF rows given as CSR arrays
    (indptr, indices, data): (sample size, where each term's entries start (vocabulary + 1, int64), each entry's
    sample position (int64), its value (float32)), each term's entries in sample order. Made at build and stored
    with the query arrays (rank.querydata): made in a query process, 0.05-0.1 s CPU, the sample's rows read from
    pages spread over the whole TF-IDF file (more of them as n grows)."""
    rows = sample_rows(n, LEXICAL_SAMPLE)
    indptr, indices, data = tfidf
    at, lengths = _gather(indptr, rows)
    terms = np.asarray(indices[at], dtype=np.int64)
    order = stable_order(terms)
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    starts = np.searchsorted(terms[order], np.arange(vocabulary + 1))
    return len(rows), starts, owner[order], np.asarray(data[at], dtype=np.float32)[order]


def stored_sample_fits(stored: tuple, n: int, vocabulary: int) -> bool:
    """Whether stored (starts, owner, values) of lexical_sample have the shape n articles and this vocabulary give
    (a file of another index version is refused by the manifest's checksums)."""
    starts, owner, values = stored
    return len(starts) == vocabulary + 1 and int(starts[-1]) == len(owner) == len(values) and \
        (not len(owner) or int(owner[-1]) < min(n, LEXICAL_SAMPLE))


class LexicalStage:
    """TF-IDF and mention parts from CSR arrays (`csr_arrays()` of a lexical index or its mapped arrays)."""

    def __init__(self, arrays: dict, n: int, vocabulary: int, matrix=None):
        """matrix: the same TF-IDF rows as a SciPy CSR matrix, when the caller has one (the batch's lexical index;
        a query by id imports no SciPy): `values` and `stats` then gather rows and multiply in SciPy's compiled
        loops, the same products added in the same order as the NumPy steps."""
        from ..store.lextopk import PostingsTopK
        from ..store.resident import held, is_mapped

        self.n, self.vocabulary = n, vocabulary
        # plain array views of mapped files (no copy): NumPy's memmap subclass costs a wrapper on every lookup
        arrays = {name: tuple(np.asarray(a) for a in value) if isinstance(value, tuple) else
                  value if name == "mentions" else np.asarray(value) for name, value in arrays.items()}
        # read at random by every list: held in memory by a process that ranks many (store.resident; else as given)
        for name in ("tfidf", "postings", "impacts"):
            if name in arrays:
                arrays[name] = tuple(held(a) for a in arrays[name])
        if matrix is not None and is_mapped(matrix.indices) and not is_mapped(arrays["tfidf"][1]):
            from scipy.sparse import csr_matrix  # the same rows over the held arrays

            matrix = csr_matrix(arrays["tfidf"][::-1], shape=matrix.shape, copy=False)
        self.tfidf = arrays["tfidf"]  # (indptr, indices, data) docs x terms
        self.mentions = arrays["mentions"]  # both directions (store.bothways: M + Mᵀ by rows)
        self.topk = PostingsTopK(*arrays["postings"], n, arrays.get("postings_max"))
        self._arrays = arrays
        self._impact = None
        self._mean = arrays.get("tfidf_mean")
        self._sample = None
        self._matrix = matrix
        self._sample_matrix = None

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """A stored article's TF-IDF row: (terms, weights)."""
        indptr, indices, data = self.tfidf
        a, b = int(indptr[row]), int(indptr[row + 1])
        return np.asarray(indices[a:b], dtype=np.int64), np.asarray(data[a:b], dtype=np.float32)

    @property
    def mean(self) -> np.ndarray:
        """The corpus's mean TF-IDF row (float64, one value per term)."""
        if self._mean is None:
            indptr, indices, data = self.tfidf
            self._mean = np.bincount(np.asarray(indices), weights=np.asarray(data, dtype=np.float64),
                                     minlength=self.vocabulary) / max(1, self.n)
        return np.asarray(self._mean, dtype=np.float64)

    def _sample_postings(self):
        """The sample's rows by term (lexical_sample): stored with the index (mapped: a query reads its terms'
        entries alone), else made once."""
        if self._sample is None:
            stored = self._arrays.get("lexical_sample")
            if stored is not None and stored_sample_fits(stored, self.n, self.vocabulary):
                self._sample = (min(self.n, LEXICAL_SAMPLE), *stored)
            else:
                self._sample = lexical_sample(self.tfidf, self.n, self.vocabulary)
            self._sample_rows = sample_rows(self.n, LEXICAL_SAMPLE)
        return self._sample

    def values(self, terms: np.ndarray, weights: np.ndarray, rows: np.ndarray,
               known: tuple | None = None) -> np.ndarray:
        """Exact TF-IDF cosines of the query row with `rows`: float32 products of shared terms added in term
        order, as SciPy's sparse product adds them. known: (rows, their cosines) this method gave already (a row's
        cosine does not depend on the rows computed with it): those are not computed again."""
        if known is not None and len(known[0]) and len(rows):
            rows = np.asarray(rows, dtype=np.int64)
            order = np.argsort(known[0], kind="stable")
            done, cosines = np.asarray(known[0], np.int64)[order], np.asarray(known[1], np.float32)[order]
            at = np.minimum(np.searchsorted(done, rows), len(done) - 1)
            hit = done[at] == rows
            out = np.empty(len(rows), dtype=np.float32)
            out[hit] = cosines[at[hit]]
            out[~hit] = self.values(terms, weights, rows[~hit])
            return out
        out = np.zeros(len(rows), dtype=np.float32)
        if not len(terms) or not len(rows):
            return out
        dense = np.zeros(self.vocabulary, dtype=np.float32)
        dense[terms] = weights
        indptr, indices, data = self.tfidf
        kernel = ACTIVE["row_dots"]
        if kernel is not None and data.dtype == np.float32:  # the same sums, the rows read where they lie
            return row_dots(kernel, self.tfidf, rows, dense)
        if self._matrix is not None:  # each row's products in its term order, a float32 sum from 0 (+0 elsewhere)
            return np.asarray(self._matrix[np.asarray(rows, dtype=np.int64)] @ dense, dtype=np.float32)
        at, lengths = _gather(indptr, np.asarray(rows, dtype=np.int64))
        listed = indices[at]
        mine = np.zeros(self.vocabulary, dtype=bool)
        mine[terms] = weights != 0
        shared = np.flatnonzero(mine[listed])  # the query's terms among the rows' entries: a byte gathered each
        owner = np.repeat(np.arange(len(rows)), lengths)[shared]  # each shared entry's row
        np.add.at(out, owner, np.asarray(data[at[shared]], dtype=np.float32) * dense[listed[shared]])
        return out

    def stats(self, terms: np.ndarray, weights: np.ndarray, top: tuple | None = None) -> tuple[float, float]:
        """(mean, deviation) of the query's cosines over the corpus. The mean is exact (q·μ). The mean square is
        exact for `top` (the query's best rows and their cosines, which hold most of a TF-IDF row's weight) and
        measured on the sample for every other row; on a corpus no larger than the sample, both are exact."""
        if not len(terms):
            return 0.0, 0.0
        mean = float(np.dot(weights.astype(np.float64), self.mean[terms]))
        size, starts, owner, values = self._sample_postings()
        kernel = ACTIVE["sample_sums"]
        if kernel is not None:  # the same sums in the same order, no rows copied out (store.compiledscores)
            scores = np.zeros(size)
            kernel(starts, owner, values, np.asarray(terms, dtype=np.int64), weights, scores)
        elif self._matrix is not None:  # the same products added term after term into each sample row's sum
            scores = self.sample_matrix[np.asarray(terms, dtype=np.int64)].T @ np.asarray(weights, np.float64)
        else:
            at, lengths = _gather(starts, terms)  # the sample's entries of each query term
            scores = np.bincount(owner[at], weights=values[at].astype(np.float64) * np.repeat(weights, lengths),
                                 minlength=size)
        top_rows, top_scores = top if top is not None else (np.zeros(0, np.int64), np.zeros(0))
        return stratified(self.n, top_rows, top_scores, self._sample_rows, scores, mean)

    @property
    def sample_matrix(self):
        """The sample's rows by term as a SciPy CSR matrix (terms x sample rows, float64), made once."""
        if self._sample_matrix is None:
            from scipy.sparse import csr_matrix

            size, starts, owner, values = self._sample_postings()
            self._sample_matrix = csr_matrix((values.astype(np.float64), owner, starts),
                                             shape=(self.vocabulary, size))
        return self._sample_matrix

    def pool(self, terms: np.ndarray, weights: np.ndarray, depth: int, more: int = 0) -> tuple:
        """(the `depth` best rows, their cosines, the cosine no other row exceeds, the next `more` best rows with
        their cosines or None). Exact top-k from the posting lists (MaxScore) while the query's lists hold at most
        EXACT_POSTINGS postings; beyond, candidates from the lists' heads (ImpactTopK: a bounded read, not exact)
        with the bound it proves, and nothing more; their cosines are then `values`' (`exact_pool` False), which a
        later `values` of the same query may be given (`known`). A document's cosine is summed in the same order
        whatever k, and ties go to the lower row, so the `depth` best of `depth + more` are the `depth` best."""
        if not self.exact_pool(terms):
            rows, _, bound = self.impact.top_k(terms, weights, depth)
            return rows, self.values(terms, weights, rows), bound, None
        rows, scores = self.topk.top_k(terms, weights, depth + more)
        extra = (rows[depth:], scores[depth:]) if more else None
        rows, scores = rows[:depth], scores[:depth]
        return rows, scores, float(scores[-1]) if len(rows) >= depth else 0.0, extra  # an outsider shares no term

    def exact_pool(self, terms: np.ndarray) -> bool:
        """Whether `pool` takes the exact top-k from the posting lists (their postings at most EXACT_POSTINGS)."""
        indptr = self.topk.indptr
        return int(np.sum(np.asarray(indptr[terms + 1], np.int64) - np.asarray(indptr[terms], np.int64))) <= \
            EXACT_POSTINGS

    def heads_made(self, rows: np.ndarray | None = None, block: int = 1 << 22) -> np.ndarray:
        """Whether each stored article's lexical pool (of `rows`, else of every row) comes from the lists' heads
        (`exact_pool` False for its terms), for every row at once: its terms' postings summed, runs of rows of at
        most about `block` entries at a time (common.blocks.runs)."""

        lengths = np.diff(np.asarray(self.topk.indptr, dtype=np.int64))
        indptr, indices, _ = self.tfidf
        rows = np.arange(self.n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        sizes = np.asarray(indptr[rows + 1], np.int64) - np.asarray(indptr[rows], np.int64)
        sums = np.zeros(len(rows), dtype=np.int64)
        for start, stop in runs(np.concatenate(([0], np.cumsum(sizes))), block):
            at, size = _gather(indptr, rows[start:stop])
            sums[start:stop] = np.bincount(np.repeat(np.arange(stop - start), size),
                                           weights=lengths[np.asarray(indices)[at]], minlength=stop - start)
        return sums > EXACT_POSTINGS

    @property
    def impact(self):
        """store.lextopk.ImpactTopK over the postings ordered by value (stored with the index, else made once)."""
        if self._impact is None:
            from ..store.lextopk import ImpactTopK, impact_order

            indptr = self._arrays["postings"][0]
            ordered = self._arrays.get("impacts") or impact_order(*self._arrays["postings"])
            self._impact = ImpactTopK(indptr, *ordered, self.n, IMPACT_BUDGET, IMPACT_MIN_PER_TERM)
        return self._impact

    def mention_row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        return self.mentions.row(row)

    def mention_stats(self, values: np.ndarray) -> tuple[float, float]:
        v = values.astype(np.float64)
        mean = v.sum() / max(1, self.n)
        return mean, float(np.sqrt(max(0.0, (v * v).sum() / max(1, self.n) - mean * mean)))


def stratified(n: int, top_rows: np.ndarray, top_values: np.ndarray, sample_rows: np.ndarray,
               sample_values: np.ndarray, mean: float | None = None) -> tuple[float, float]:
    """(mean, deviation) of a query's row of n values, known exactly for its best rows (`top`, where a row's weight
    sits) and measured on a fixed sample for every other row; `mean` when it is known exactly. On a corpus no
    larger than the sample, exact."""
    return stratified_rows(n, top_rows, [top_values], sample_rows, [sample_values], mean)[0]


def stratified_rows(n: int, top_rows: np.ndarray, top_values: list, sample_rows: np.ndarray, sample_values: list,
                    mean: float | None = None) -> list[tuple[float, float]]:
    """`stratified` of several rows of one query whose best rows are the same (the window score and max-sim of
    its window pool): which sample rows are outside the pool is found once."""
    rest = ~_members(sample_rows, top_rows)
    others = n - len(top_rows)
    return [_stratified(n, others, np.asarray(top, dtype=np.float64), np.asarray(sample, dtype=np.float64)[rest],
                        mean) for top, sample in zip(top_values, sample_values)]


def _stratified(n: int, others: int, top: np.ndarray, values: np.ndarray, mean: float | None) -> tuple[float, float]:
    if mean is None:
        mean = (top.sum() + (others * values.mean() if len(values) else 0.0)) / max(1, n)
    squares = np.square(top).sum() + (others * np.mean(np.square(values)) if len(values) else 0.0)
    return float(mean), float(np.sqrt(max(0.0, squares / max(1, n) - mean * mean)))


def _members(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """np.isin(values, rows) for integer arrays, by binary search in the (few) sorted rows."""
    if not len(rows):
        return np.zeros(len(values), dtype=bool)
    rows = np.sort(rows)
    return rows[np.minimum(np.searchsorted(rows, values), len(rows) - 1)] == values


def mention_depth(depth: int) -> int:
    """How many entries of a query's mention row may join its candidates, for pools of `depth`."""
    return MENTION_POOL_FACTOR * depth


def mention_pool(cols: np.ndarray, values: np.ndarray, depth: int) -> tuple[np.ndarray, float]:
    """The entries of a query's mention row that join its candidates, and the value no other entry exceeds: those
    above the row's (depth+1)-th largest value (every entry of a row of at most `depth`, with a cut of 0: an article
    outside the row has no mention). At most `depth` entries (`mention_depth` of the pools' depth), and which ones
    depends on the values alone (no tie order), so the nightly reach knows an unchanged entry's side of the cut from
    the cut and its value."""
    if len(values) <= depth:
        return cols, 0.0
    cut = mention_cut(values, depth)
    return cols[values > cut], cut


def mention_cut(values: np.ndarray, depth: int) -> float:
    """The cut of a mention row's stored values (`mention_pool`): their (depth+1)-th largest, 0 with at most depth."""
    if len(values) <= depth:
        return 0.0
    kernel = ACTIVE["rows_top"]
    if kernel is not None and values.dtype == np.float32:  # one pass through a heap (store.compiledtopk)
        cand, cut = np.empty((1, depth), np.int64), np.empty(1, np.float32)
        kernel(np.ascontiguousarray(values)[None, :], depth, cand, cut)
        return float(cut[0])
    # a sort, not np.partition: a mention row holds few distinct values, on which the partition's selection
    # degrades (105,293 values of 31 distinct at 1M articles: 8.4 ms, against 0.5 sorted and 0.07 in the heap)
    return float(np.sort(values)[len(values) - depth - 1])


def mention_cuts(rows: np.ndarray, depth: int) -> np.ndarray:
    """`mention_pool`'s cut of each row of a dense block of mention rows (len(rows) x n), as float64."""
    n = rows.shape[1]
    if n <= depth:
        return np.zeros(len(rows))
    # sorted (mention_cut): a dense mention row is mostly zeros, on which np.partition's selection degrades (256 rows
    # of 14,592: 343 ms, against 19 ms sorted)
    return np.sort(rows, axis=1)[:, n - depth - 1].astype(np.float64)


def pool_of(rows: np.ndarray, values: np.ndarray, depth: int) -> tuple[np.ndarray, float, np.ndarray]:
    """The `depth` best of rows by value (ties: lower row), the lowest value among them, and their positions."""
    if not len(rows):
        return rows, -np.inf, np.zeros(0, np.int64)
    order = np.lexsort((rows, -values))[:depth]
    return rows[order], float(values[order].min()), order
