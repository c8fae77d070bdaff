"""The second stage's per-candidate loops compiled (numba), for the processes that rank many lists (the nightly
batch's links phase, the service; switched on with the other loops by `store.compiledtopk.use_compiled`): the
products of a query's windows with its candidates' stored windows (rank.windows.WindowScores.pairs_many) and
the lexical sample's sums (rank.candidates.LexicalStage.stats). Each reads the stored arrays where they lie, where
NumPy and SciPy first copy the rows out.

**Window products.** NumPy gathers the candidates' 8-bit codes from the mapped file (some 4,000 windows of 384
bytes a list at 1M articles, each read at random), converts them to float32 a block at a time, multiplies them with
the query's few windows and turns the result: three copies of the candidates' windows before the product. Here
each stored window's codes are read once where they lie, converted in a small buffer and multiplied with every
query window. At 1M articles (the links phase's lists on the kept index, about 4,000 candidate windows a list):
1.37 -> 1.0 ms a list, most of what is left being the reads themselves (the same loop over windows already in the
cache: 0.29 ms).

The numbers are NumPy's: a product of two code vectors is a whole number below 2^24 (384 x 127 x 127), which a
float32 sum holds exactly in any order, so the loop may add in whatever order is fastest (numba's `reassoc`
fast-math flag, this loop only: the scaling and the reductions that follow stay in NumPy, in its order).
tests/rank/test_windows.py checks the pairs bit for bit against the NumPy steps.

**The lexical sample's sums.** Each query term's entries in the sample (by term), its float64 value times the
weight added into the sample row's float64 sum, term after term: SciPy's product with the transposed sample
(`csc_matvec`); 0.40 -> 0.20-0.30 ms a query at 1M articles. tests/rank/test_two_stage.py checks them bit for
bit against SciPy and the NumPy steps. (The candidates' TF-IDF cosines were tried the same way: no faster than
SciPy's gather and product, 0.26 against 0.21-0.27 ms for 445 rows: each row's float32 sum is one chain of
dependent additions either way.)
"""

from __future__ import annotations

import numpy as np

FASTMATH = {"reassoc", "nsz", "contract"}  # exact here: every partial sum is a whole number below 2^24


AHEAD = 8  # stored windows prefetched ahead of the one multiplied (store.prefetch)
ROWS_AHEAD = 4  # TF-IDF rows prefetched ahead of the one summed
VECTORS_AHEAD = 4  # candidates' vectors prefetched ahead of the one copied


def prefetch_row(array, row):
    """A hint, nothing else: compiledtopk puts store.prefetch's compiled prefetch here before compiling the loops
    (a loop compiled without it gives the same numbers)."""


def prefetch_span(array, start, count):
    """A hint, as prefetch_row (store.prefetch.prefetch_span)."""


PLAIN = (prefetch_row, prefetch_span)  # no hint: compiled as such by compiledtopk where LLVM does not take it


def _window_products(codes, at, query, out):
    """out[j, k] = query[j] . codes[at[k]] for the query windows `query` (float32 whole numbers, Q x dim) and the
    stored windows at positions `at` of `codes` (int8, windows x dim; often memory-mapped), the window AHEAD
    places on already asked for."""
    n_query, dim = query.shape
    row = np.empty(dim, np.float32)
    n = len(at)
    for ask in range(n + AHEAD):  # window `ask` asked for, window k = ask - AHEAD multiplied
        if ask < n:
            prefetch_row(codes, at[ask])
        k = ask - AHEAD
        if k < 0:
            continue
        codes_k = codes[at[k]]
        for t in range(dim):
            row[t] = np.float32(codes_k[t])
        for j in range(n_query):
            total = np.float32(0.0)
            query_j = query[j]
            for t in range(dim):
                total += row[t] * query_j[t]
            out[j, k] = total


def _window_maxima(sims, scales, worth, starts, firsts, counts, best, matched):
    """The maxima of rank.windows.WindowScores._reduce, in one pass each: sims (query windows x stored windows,
    the products; several queries' windows stacked, query q's rows starts[q]:starts[q + 1]) are scaled in place
    as NumPy scales them ((product x the stored window's scale) x the query window's, float32), then best[j, r] =
    the largest of row j over run r (firsts[r], counts[r] stored windows: an article's) and matched[q, k] = the
    largest of column k over query q's rows. No fast-math: every rounding is NumPy's."""
    n_query, width = sims.shape
    for j in range(n_query):
        w = worth[j]
        for k in range(width):
            sims[j, k] = (sims[j, k] * scales[k]) * w
    for q in range(len(starts) - 1):
        for k in range(width):
            m = sims[starts[q], k]
            for j in range(starts[q] + 1, starts[q + 1]):
                if sims[j, k] > m:
                    m = sims[j, k]
            matched[q, k] = m
    for j in range(n_query):
        for r in range(len(firsts)):
            a = firsts[r]
            m = sims[j, a]
            for k in range(a + 1, a + counts[r]):
                if sims[j, k] > m:
                    m = sims[j, k]
            best[j, r] = m


def _sample_sums(starts, owner, values, terms, weights, out):
    """out[owner] += value x weight (float64) over each query term's sample entries, term after term (out zeroed
    by the caller)."""
    for i in range(len(terms)):
        t = terms[i]
        w = np.float64(weights[i])
        for e in range(starts[t], starts[t + 1]):
            out[owner[e]] += np.float64(values[e]) * w


def _row_dots(indptr, indices, data, rows, dense, out):
    """out[k] = the float32 sum, from 0 in stored order, of data[j] x dense[indices[j]] over row rows[k]'s entries
    (SciPy's csr_matvec on the gathered rows), the row ROWS_AHEAD places on already asked for: the candidates'
    TF-IDF cosines (rank.candidates.LexicalStage.values) and their shared title words (rank.signals.title_overlap)."""
    n = len(rows)
    for ask in range(n + ROWS_AHEAD):  # row `ask` asked for, row k = ask - ROWS_AHEAD summed
        if ask < n:
            a = indptr[rows[ask]]
            count = indptr[rows[ask] + 1] - a
            if count > 0:
                prefetch_span(indices, a, count)
                prefetch_span(data, a, count)
        k = ask - ROWS_AHEAD
        if k < 0:
            continue
        r = rows[k]
        total = np.float32(0.0)
        for j in range(indptr[r], indptr[r + 1]):
            total += data[j] * dense[indices[j]]
        out[k] = total


def _gather_rows(source, rows, out):
    """out[k] = source[rows[k]] (NumPy's `source[rows]` of a 2-D array), the row VECTORS_AHEAD places on already
    asked for: a query's candidates' vectors, each read at random from the corpus's (1.5 KB a row, some 700 rows a
    list at 1M articles), copied out for the same BLAS product as before."""
    n = len(rows)
    for ask in range(n + VECTORS_AHEAD):  # row `ask` asked for, row k = ask - VECTORS_AHEAD copied
        if ask < n:
            prefetch_row(source, rows[ask])
        k = ask - VECTORS_AHEAD
        if k < 0:
            continue
        r = rows[k]
        for j in range(source.shape[1]):
            out[k, j] = source[r, j]


def check_gather_rows(kernel) -> None:
    source = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows = np.array([3, 0, 3], np.int64)
    out = np.empty((3, 3), np.float32)
    kernel(source, rows, out)
    if not np.array_equal(out, source[rows]):
        raise ValueError(f"a wrong answer on the first try: {out.tolist()}")


def _pair_values(indptr, indices, data, qs, cs, out):
    """out[i] = the stored value at (qs[i], cs[i]) of a CSR matrix whose rows' indices are sorted, 0 where none (a
    binary search in row qs[i]): many queries' candidates looked up at once (graph_signals.QueryBlock)."""
    for i in range(len(qs)):
        lo, hi = indptr[qs[i]], indptr[qs[i] + 1]
        end = hi
        c = cs[i]
        while lo < hi:
            mid = (lo + hi) // 2
            if indices[mid] < c:
                lo = mid + 1
            else:
                hi = mid
        out[i] = data[lo] if lo < end and indices[lo] == c else 0.0


def check_pair_values(kernel) -> None:
    out = np.empty(4, np.float32)
    kernel(np.array([0, 2, 2, 3], np.int64), np.array([1, 3, 0], np.int32), np.array([0.5, 2.0, 4.0], np.float32),
           np.array([0, 0, 1, 2], np.int64), np.array([3, 2, 1, 0], np.int64), out)
    if out.tolist() != [2.0, 0.0, 0.0, 4.0]:
        raise ValueError(f"a wrong answer on the first try: {out.tolist()}")


def _copy_slots(copies, skip, days, kept, first):
    """rank.linking.collapse_duplicates' walk down a ranked list: position i (not `skip`ped: a copy of the query)
    joins the first slot holding a copy of it (copies[i, j], j < i), else opens a slot; a slot keeps its earliest
    published member (days; NaN never earlier) and is placed where its first member ranks. kept[s], first[s]: slot
    s's kept and first positions; returns the number of slots."""
    n = copies.shape[0]
    slot_of = np.full(n, n, np.int64)
    m = 0
    for i in range(n):
        if skip[i]:
            continue
        dup = n
        for j in range(i):
            if copies[i, j] and slot_of[j] < dup:
                dup = slot_of[j]
        if dup == n:
            slot_of[i] = m
            kept[m] = i
            first[m] = i
            m += 1
        else:
            slot_of[i] = dup
            if days[i] < days[kept[dup]]:
                kept[dup] = i
    return m


def check_copy_slots(kernel) -> None:
    copies = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=np.bool_)
    kept, first = np.empty(4, np.int64), np.empty(4, np.int64)
    m = kernel(copies, np.array([0, 0, 0, 0], np.bool_), np.array([5.0, 3.0, np.nan, 1.0]), kept, first)
    if m != 2 or kept[:m].tolist() != [3, 2] or first[:m].tolist() != [0, 2]:
        raise ValueError(f"a wrong answer on the first try: {m}, {kept[:m].tolist()}, {first[:m].tolist()}")


def check_row_dots(kernel) -> None:
    out = np.empty(3, np.float32)
    kernel(np.array([0, 2, 2, 3], np.int64), np.array([1, 0, 1], np.int32), np.array([0.5, 2.0, 4.0], np.float32),
           np.array([2, 1, 0], np.int64), np.array([3.0, 0.25], np.float32), out)
    if out.tolist() != [1.0, 0.0, 6.125]:
        raise ValueError(f"a wrong answer on the first try: {out.tolist()}")


def check_window_products(kernel) -> None:
    """Raise if the compiled loop gives another product than NumPy on a small input (run once when compiled)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, (6, 384)).astype(np.int8)
    query = rng.integers(-127, 128, (2, 384)).astype(np.float32)
    at = np.array([4, 0, 5], np.int64)
    out = np.empty((2, 3), np.float32)
    kernel(codes, at, query, out)
    if not np.array_equal(out, query @ codes[at].astype(np.float32).T):
        raise ValueError("a wrong product on the first try")


def check_window_maxima(kernel) -> None:
    sims = np.array([[1.0, 4.0, 2.0], [3.0, 0.5, 1.0]], np.float32)
    best, matched = np.empty((2, 2), np.float32), np.empty((1, 3), np.float32)
    kernel(sims, np.array([1.0, 0.5, 2.0], np.float32), np.array([1.0, 2.0], np.float32), np.array([0, 2], np.int64),
           np.array([0, 1], np.int64), np.array([1, 2], np.int64), best, matched)
    if best.tolist() != [[1.0, 4.0], [6.0, 4.0]] or matched.tolist() != [[6.0, 2.0, 4.0]]:
        raise ValueError(f"a wrong answer on the first try: {best.tolist()}, {matched.tolist()}")


def check_sample_sums(kernel) -> None:
    out = np.zeros(2)
    kernel(np.array([0, 1, 3], np.int64), np.array([1, 0, 1], np.int64), np.array([0.5, 2.0, 0.25], np.float32),
           np.array([1, 0], np.int64), np.array([2.0, 4.0], np.float32), out)
    if out.tolist() != [4.0, 2.5]:
        raise ValueError(f"a wrong answer on the first try: {out.tolist()}")


def stored_products(kernel, codes: np.ndarray, at: np.ndarray | None, query: np.ndarray) -> np.ndarray:
    """(query windows x stored windows) float32 products of `query` (float32 whole numbers) with the windows at
    `at` of `codes` (int8; at None: every row of `codes`, in order), through `kernel` (the compiled loop)."""
    at = np.arange(len(codes), dtype=np.int64) if at is None else np.asarray(at, dtype=np.int64)
    out = np.empty((len(query), len(at)), dtype=np.float32)
    if len(at) and len(query):
        kernel(codes, at, np.ascontiguousarray(query, dtype=np.float32), out)
    return out


def row_dots(kernel, csr: tuple, rows: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """float32 products of the rows `rows` of a sparse matrix (`csr`: indptr, indices, float32 data) with the
    dense float32 vector `dense`, each summed from 0 in stored order (SciPy's), through `kernel` (the compiled
    loop `_row_dots`)."""
    indptr, indices, data = csr
    out = np.empty(len(rows), dtype=np.float32)
    kernel(indptr, indices, data, np.asarray(rows, dtype=np.int64), dense, out)
    return out


def gather_rows(kernel, source, rows: np.ndarray) -> np.ndarray:
    """source[rows] (rows: int64, each a row of the 2-D `source`), copied by `kernel` (the compiled `_gather_rows`)
    where there is one and `source` is a C-ordered float32 array, else by its own indexing (NumPy's, or a row
    reader's such as store.ann.DecodedRows): the same array either way."""
    if kernel is None or not isinstance(source, np.ndarray):
        return source[rows]
    source = source.view(np.ndarray)  # a memmap's data as a plain array (no copy)
    if source.ndim != 2 or source.dtype != np.float32 or not source.flags.c_contiguous:
        return source[rows]
    out = np.empty((len(rows), source.shape[1]), dtype=np.float32)
    kernel(source, np.asarray(rows, dtype=np.int64), out)
    return out


def pair_values(kernel, csr: tuple, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """float32 values at (qs[i], cs[i]) of a sparse matrix (`csr`: indptr, indices sorted in each row, data), 0
    where it has none, through `kernel` (the compiled loop `_pair_values`)."""
    indptr, indices, data = csr
    out = np.empty(len(qs), dtype=np.float32)
    kernel(indptr, indices, data, np.asarray(qs, dtype=np.int64), np.asarray(cs, dtype=np.int64), out)
    return out
