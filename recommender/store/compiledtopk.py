"""The lexical heads' top-k (store.lextopk.ImpactTopK) as one compiled loop (numba), and the coarse lists' screen
(store.coarse), for the processes that rank many lists: the nightly batch's links phase and the service. The
heads give the same numbers as ImpactTopK's NumPy steps: each read posting's float32 product (value x weight) added
to its document's float64 sum in the order read (what `np.bincount` does), the documents with a positive sum ranked
by (sum descending, row ascending), the k best kept.

NumPy gathers the postings read, finds the distinct documents among them through a scratch array of the corpus's
size (`lextopk.distinct`), sums, then partitions every sum: several passes over some 65,000 postings and 50,000
documents a query at 1M articles, each reading or writing at random in an array of the corpus's size. Here one
pass adds each posting into an open-addressing table of two to four times the postings read (about 5 MB at the
65,536-posting budget, whatever the corpus's size), noting each document the first time it is seen; a second pass
over those documents reads each sum back, frees its slot, and keeps the k best in a heap. At 1M articles (the kept
1M index, the lists of its links phase): 2.3-2.6 -> 1.8-2.1 ms a call, and 10.59 -> 9.65 ms CPU a whole list
(docs/scale.md, "The lexical heads compiled").

A second loop, `_rows_top`, is the coarse lists' screen (store.coarse.Coarse): each query window's best 2m + 8
lists of the IVF's 8,044 at 1M, and the next one's value, from its float32 products with every centroid, by one
pass with a small heap where `np.argpartition` took about 80 us a row (about 17 us here); the lists found are the
same (the screen's proof needs only the values at its edge; tests/store/test_windowann.py checks the lists). It
also gives a mention row's cut (rank.candidates.mention_cut: the (depth+1)-th largest of few distinct values, on
which np.partition degrades).

The second stage's loops (window pairs, the lexical sample's sums) are in store.compiledscores; the window pairs'
loop also screens a few query windows (a query by id's) against 8-bit copies of the centroids: a quarter of the
bytes read, with a bound widened by the copies' error (store.coarse.Coarse.eight), so the same lists.

All are switched on for a process by `use_compiled()` (the batch's link job, the service) and read from `ACTIVE`,
loaded on demand (`head_sums_kernel()`, `rows_top_kernel()`): importing numba costs 0.2-0.35 s and the first call
about 0.4 s more (numba's cache on disk; about 1 s to compile where there is none), which a one-shot query by id
does not pay: it keeps the NumPy steps. None when numba is not installed: the NumPy steps, the same results.

    kernel = head_sums_kernel()   # None without numba
    rows, sums = head_top_k(kernel, indices, data, begins, read, weights, n_docs, k)
"""

from __future__ import annotations

import logging
import threading

import numpy as np

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_COMPILED: dict = {}


HEAD_AHEAD = 16  # postings ahead whose table slot the heads' loop asks for (store.prefetch)
FIBONACCI = 11400714819323198485  # 2^64 / the golden ratio: the heads' table's hash multiplier


def prefetch_row(array, row):
    """A hint, nothing else (as compiledscores.prefetch_row): store.prefetch's before compiling `_head_top`."""


_PLAIN_ROW = prefetch_row  # what `prefetch_row` is without the hint


def _head_top(indices, data, begins, read, weights, k, table, slots, heap_scores, heap_rows):
    """The sums of the postings read (term t: `read[t]` postings from `begins[t]`, times `weights[t]`) and their k
    best documents in a heap (heap_scores, heap_rows, its first k places; the worst at 0; row -1 where fewer than k
    documents have a positive sum). The sums are kept in an open-addressing table, each slot a document and its sum
    side by side (`table[i, 0]`, the document as a float64, -1 where free; `table[i, 1]`, its sum: one cache line
    read a posting, where two arrays cost two), a power of two of at least twice the postings read, all free on
    entry and left so; `slots`: room for the postings read)."""
    bits = 0
    while (1 << bits) < len(table):
        bits += 1
    mask = len(table) - 1
    m = 0
    for t in range(len(begins)):
        w = weights[t]
        stop = begins[t] + read[t]
        for j in range(begins[t], stop):
            if j + HEAD_AHEAD < stop:  # the slot of the posting HEAD_AHEAD on, asked for (a hint)
                ahead = indices[j + HEAD_AHEAD]
                prefetch_row(table, np.int64((np.uint64(ahead) * np.uint64(FIBONACCI)) >> np.uint64(64 - bits))
                             if bits else 0)
            d = indices[j]
            key = np.float64(d)
            # Fibonacci hashing: the top bits of the document times 2^64 / golden ratio, then the next free slot
            i = np.int64((np.uint64(d) * np.uint64(FIBONACCI)) >> np.uint64(64 - bits)) if bits else 0
            while True:
                if table[i, 0] == key:
                    break
                if table[i, 0] == -1.0:
                    table[i, 0] = key
                    slots[m] = i
                    m += 1
                    break
                i = (i + 1) & mask
            table[i, 1] += np.float64(np.float32(data[j]) * w)
    heap_scores[:k] = -np.inf  # k places held by nothing (-inf, row -1), each document better than them
    heap_rows[:k] = -1
    for x in range(m):  # each document once, in the order first read; its slot freed
        i = slots[x]
        d = np.int64(table[i, 0])
        s = table[i, 1]
        table[i, 0] = -1.0
        table[i, 1] = 0.0
        # kept when positive and better than the worst kept (a higher sum, or the same sum and a lower row): it
        # takes the root's place and sinks below every child worse than it
        if not s > 0 or heap_scores[0] > s or (heap_scores[0] == s and heap_rows[0] <= d):
            continue
        c = 0
        while True:
            child = 2 * c + 1
            if child >= k:
                break
            if child + 1 < k and (heap_scores[child + 1] < heap_scores[child] or
                                  (heap_scores[child + 1] == heap_scores[child] and
                                   heap_rows[child + 1] > heap_rows[child])):
                child += 1
            if heap_scores[child] < s or (heap_scores[child] == s and heap_rows[child] > d):
                heap_scores[c] = heap_scores[child]
                heap_rows[c] = heap_rows[child]
                c = child
            else:
                break
        heap_scores[c] = s
        heap_rows[c] = d


def _rows_top(values, width, cand, outside):
    """For each row of `values` (finite float32 numbers, more than width + 1 columns): the columns of its `width`
    largest values, in no order (`cand`), and its (width + 1)-th largest value (`outside`): what `np.argpartition`
    gives store.coarse's screen, ties at the edge taken either way (the screen's proof needs only the value). One
    pass of the row through a min-heap of width + 1 entries, which starts full of -inf."""
    n_rows, n = values.shape
    k = width + 1
    heap_values = np.empty(k, np.float32)
    heap_columns = np.empty(k, np.int64)
    for r in range(n_rows):
        heap_values[:] = -np.inf
        heap_columns[:] = -1
        for j in range(n):
            value = values[r, j]
            if not value > heap_values[0]:
                continue
            c = 0  # the root (the smallest kept) goes; the new value sinks to its place
            while True:
                child = 2 * c + 1
                if child >= k:
                    break
                if child + 1 < k and heap_values[child + 1] < heap_values[child]:
                    child += 1
                if heap_values[child] < value:
                    heap_values[c] = heap_values[child]
                    heap_columns[c] = heap_columns[child]
                    c = child
                else:
                    break
            heap_values[c] = value
            heap_columns[c] = j
        outside[r] = heap_values[0]
        for j in range(1, k):
            cand[r, j - 1] = heap_columns[j]


# the loops in use in this process (`use_compiled`)
ACTIVE: dict = {"head_top": None, "rows_top": None, "window_products": None, "window_maxima": None,
                "sample_sums": None, "row_dots": None, "pair_values": None,
                "copy_slots": None, "gather_rows": None}


def use_compiled(on: bool = True) -> bool:
    """Whether this process runs the compiled loops from now on (the lexical heads' top-k in lextopk.ImpactTopK,
    the coarse lists' screens in coarse.Coarse, the second stage's loops in store.compiledscores; the same results
    as their NumPy steps): asked by processes that rank many lists (the nightly batch, the service), not by a
    one-shot query (numba's import costs 0.2-0.35 s). False when numba is not installed or cannot build them here."""
    for name in ACTIVE:
        ACTIVE[name] = _kernel(name) if on else None
    return on and all(kernel is not None for kernel in ACTIVE.values())


def kernel_for(name: str, function, check):
    """`function` (a loop of another stage, e.g. batch.follow_compiled's) compiled as the store's loops are (numba,
    cached on disk, tried once on a small input by `check`), for a process that runs the compiled loops
    (`use_compiled`); None where it does not, or where numba cannot build it here (logged: the caller's NumPy steps
    run, with the same results)."""
    if all(kernel is None for kernel in ACTIVE.values()):
        return None
    return _kernel(name, (function, check))


def head_sums_kernel():
    """`_head_top` compiled (numba, cached on disk where numba finds a writable place) and tried once on a small
    input, or None when numba cannot be imported or cannot compile it here (logged: the NumPy steps run)."""
    return _kernel("head_top")


def rows_top_kernel():
    """`_rows_top` compiled and tried once, or None (store.coarse's screen then partitions in NumPy)."""
    return _kernel("rows_top")


def _kernel(name: str, loop: tuple | None = None):
    with _LOCK:
        if name not in _COMPILED:
            _COMPILED[name] = _compiled(name, loop)
        return _COMPILED[name]


def _compiled(name: str, loop: tuple | None = None):
    """The loop `name` compiled, or None (logged); loop: (function, check) of another stage's loop (kernel_for),
    compiled without the prefetch hints."""
    try:
        import numba
    except ImportError:
        log.debug("numba not installed: the store's compiled loops stay in NumPy")
        return None
    fastmath: set | bool = False
    space, plain = None, {}
    if loop is not None:
        function, check = loop
    elif name in _SCORES:
        from . import compiledscores

        space, plain = vars(compiledscores), dict(zip(("prefetch_row", "prefetch_span"), compiledscores.PLAIN))
        function, check = getattr(compiledscores, "_" + name), getattr(compiledscores, "check_" + name)
        fastmath = compiledscores.FASTMATH if name == "window_products" else False
    else:
        function, check = {"head_top": (_head_top, _check_head_top), "rows_top": (_rows_top, _check_rows_top)}[name]
        space, plain = globals(), {"prefetch_row": _PLAIN_ROW}
    hinted = space is not None and _hinted(space, plain)
    try:
        return _built(numba, function, check, fastmath)
    except Exception as exc:  # noqa: BLE001 - the NumPy steps give the same result: never fail a run over this
        if hinted:  # an LLVM that does not take the hint as written: the loop without it (not cached on disk,
            # where a later process would read it back for the hinted loop)
            try:
                space.update({hint: numba.njit(inline="always")(f) for hint, f in plain.items()})
                return _built(numba, function, check, fastmath, cache=False)
            except Exception:  # noqa: BLE001
                pass
        log.warning("the compiled %s is not used (%s: %s); NumPy computes it", _NAMES.get(name, name),
                    type(exc).__name__, exc)
        return None


def _hinted(space: dict, plain: dict) -> bool:
    """The prefetch hints (store.prefetch) put in the loops' module (`space`) in place of the plain functions
    (`plain`: name -> function) before compiling; False where they cannot be made (the plain ones stay)."""
    try:
        from . import prefetch

        space.update({hint: getattr(prefetch, hint) for hint in plain})
        return True
    except Exception as exc:  # noqa: BLE001 - a hint: never fail a run over it
        log.debug("no prefetch hint in the compiled loops (%s: %s)", type(exc).__name__, exc)
        return False


def _built(numba, function, check, fastmath, cache: bool = True):
    """`function` compiled (cached on disk where numba can write) and tried once on a small input by `check`."""
    try:
        kernel = numba.njit(cache=cache, nogil=True, boundscheck=False, fastmath=fastmath)(function)
    except RuntimeError:  # no writable cache folder (a read-only install without a home): compiled each run
        kernel = numba.njit(nogil=True, boundscheck=False, fastmath=fastmath)(function)
    check(kernel)
    return kernel


# store.compiledscores' loops: `_name`, checked by `check_name`
_SCORES = ("window_products", "window_maxima", "sample_sums", "row_dots", "pair_values", "copy_slots", "gather_rows")
_NAMES = {"head_top": "lexical heads' top-k", "rows_top": "coarse lists' screen",
          "window_products": "window pairs' products", "window_maxima": "window pairs' maxima",
          "sample_sums": "lexical sample's sums",
          "row_dots": "sparse rows' products (TF-IDF cosines, title overlaps)",
          "pair_values": "sparse lookups of many pairs (link graph signals)",
          "copy_slots": "copies' slots in a ranked list", "gather_rows": "candidates' vectors copied out"}


def _check_head_top(kernel) -> None:
    rows, sums = head_top_k(kernel, np.array([3, 1, 3], np.int32), np.array([0.5, 0.25, 0.5], np.float32),
                            np.array([0], np.int64), np.array([3], np.int64), np.ones(1, np.float32), 4, 2)
    if rows.tolist() != [3, 1] or sums.tolist() != [1.0, 0.25]:
        raise ValueError(f"a wrong answer on the first try: {rows.tolist()}, {sums.tolist()}")


def _check_rows_top(kernel) -> None:
    values = np.array([[0.5, 3.0, 1.0, 2.0, -1.0]], np.float32)
    cand, outside = np.empty((1, 2), np.int64), np.empty(1, np.float32)
    kernel(values, 2, cand, outside)
    if sorted(cand[0].tolist()) != [1, 3] or outside[0] != 1.0:
        raise ValueError(f"a wrong answer on the first try: {cand.tolist()}, {outside.tolist()}")


_THREAD_TABLES = threading.local()  # each thread's table, slots and heap (the service answers in several threads)


def head_top_k(kernel, indices, data, begins: np.ndarray, read: np.ndarray, weights: np.ndarray, n_docs: int,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows int64, sums float32) of the k best documents, best first (ties: lower row), through `kernel`
    (head_sums_kernel()) over the thread's scratch arrays (n_docs: the documents' count; a row is exact in the
    table's float64 below 2^53)."""
    if n_docs >= 2 ** 53:
        raise ValueError(f"{n_docs} documents: more than the heads' table holds exactly")
    total = int(read.sum())
    size = 1 << max(10, (2 * total - 1).bit_length())  # at least twice the postings read: short probe runs
    table = getattr(_THREAD_TABLES, "table", None)
    if table is None or len(table[0]) < size:
        table = _THREAD_TABLES.table = (np.zeros((size, 2), dtype=np.float64), np.empty(size, dtype=np.int64))
        table[0][:, 0] = -1.0
    heap = getattr(_THREAD_TABLES, "heap", None)
    if heap is None or len(heap[0]) < k:
        heap = _THREAD_TABLES.heap = (np.empty(max(k, 256), dtype=np.float64), np.empty(max(k, 256), dtype=np.int64))
    cells, slots = table
    kernel(np.asarray(indices), np.asarray(data), begins, read, weights, k, cells[:size], slots, *heap)
    held = heap[1][:k] >= 0
    rows, best = heap[1][:k][held], heap[0][:k][held]
    order = np.lexsort((rows, -best))
    return rows[order].astype(np.int64), best[order].astype(np.float32)
