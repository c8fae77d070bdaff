"""Nearest stored windows to query windows, from an index built for top-k (FAISS), so a query's window pool is
found without a product against every stored window.

    ann = WindowANN.build(window_vectors)          # float32, unit length (the stored windows, dequantised)
    sims, ids = ann.search(query_windows, k)       # each query window's k nearest stored windows (-1 padded)
    ann.save(path); WindowANN.load(path)           # FAISS's own format, written atomically, memory-mapped on load

The index type follows the number of windows (never the ranking): up to FLAT_MAX windows an exact flat inner-
product index; above it IVF with 8-bit scalar quantisation (as store.ann does for article vectors), whose nprobe
is chosen at build as the smallest that finds RECALL_TARGET of each query window's RECALL_K nearest windows on a
seeded sample (`store.windowrecall.tune_nprobe`; the recall is recorded in the manifest). A window's id is its
row in the stored windows (store.windowfiles), so `offsets` maps it to its article. Built from the stored codes x
scales (`from_codes`), so its neighbours are those of what the window score reads. Measured: docs/scale.md,
"Window candidates" (scripts/bench_window_ann.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .ann import nlist_for, no_prefetch, trained_ivf_sq8, training_rows
from .coarse import Coarse

# Exact flat search up to this many windows (about 1,000 articles of MDN's shape). A flat search reads every
# window (1.5 KB each): for one article's windows it costs about as much as the IVF search at 2,000 windows and
# 4-5 times more from 5,000 windows on (up to 23 times at MDN's 59,030), while the IVF build stays under 2 s up to
# 10,000 windows. Measured: docs/scale.md, "Window candidates".
FLAT_MAX = 4_000
FIRST_NPROBE = 4  # an IVF index's nprobe until tuned (store.windowrecall.tune_nprobe tries NPROBES from it)
SMALL_SEARCH = 32  # query windows up to which a search runs on one thread (1.1 ms against 9 ms on two
# busy cores for one MDN article's windows at nprobe 16)
BLOCK = 32_768  # windows dequantised at a time (50 MB of float32 at 384 dimensions)

FLAT, IVF = "faiss-flat-ip", "faiss-ivf-sq8"


def window_rows(codes: np.ndarray, scales: np.ndarray | None, rows) -> np.ndarray:
    """float32 window vectors of `rows` (a slice or ids): codes x scales, or the vectors themselves (scales None)."""
    block = np.asarray(codes[rows], dtype=np.float32)
    return np.ascontiguousarray(block if scales is None else block * np.asarray(scales[rows], np.float32)[:, None])


def code_vectors(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Query windows given as codes (numbers) and scales as the float32 vectors a search reads (row by row: the
    same numbers whatever the rows converted with them)."""
    return np.asarray(codes, np.float32) * np.asarray(scales, np.float32)[:, None]


class WindowANN:
    """A FAISS index over window vectors: IndexFlatIP (exact) or IndexIVFScalarQuantizer (approximate)."""

    def __init__(self, index, count: int | None = None):  # count: the placeholder's signature; ntotal says it
        self.index = index

    def __getstate__(self) -> dict:  # the Ray engine ships the batch's job to its workers
        import faiss

        return {"faiss": faiss.serialize_index(self.index), "nprobe": self.nprobe}

    def __setstate__(self, state: dict) -> None:
        import faiss

        self.index = faiss.deserialize_index(state["faiss"])
        if state["nprobe"] is not None:
            self.index.nprobe = state["nprobe"]

    @property
    def approximate(self) -> bool:
        return hasattr(self.index, "nprobe")

    @property
    def backend(self) -> str:
        return IVF if self.approximate else FLAT

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    @property
    def nprobe(self) -> int | None:
        return int(self.index.nprobe) if self.approximate else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.index.nprobe = int(value)

    @classmethod
    def build(cls, vectors: np.ndarray, flat_max: int | None = None, seed: int = 1234) -> "WindowANN":
        """Over float32 window vectors (W x d, unit length); flat up to `flat_max` (FLAT_MAX) windows, else IVF
        at its default nprobe (`tune_nprobe` chooses it from measured recall)."""
        return cls.from_codes(vectors, None, flat_max, seed)

    @classmethod
    def from_codes(cls, codes: np.ndarray, scales: np.ndarray | None, flat_max: int | None = None,
                   seed: int = 1234, trained=None, lists: np.ndarray | None = None) -> "WindowANN":
        """Over stored windows (int8 codes x float32 scales, store.windowfiles; memory-mapped is fine), read a
        block at a time so that no full float32 copy is made; scales None: `codes` are the vectors. trained: an
        empty IVF index already trained (`reusable_training`), used instead of training one above flat_max;
        lists: with it, each window's list where already known (`kept_lists`; -1: found by `Coarse`)."""
        import faiss

        n, dim = codes.shape
        flat_max = FLAT_MAX if flat_max is None else flat_max
        if n <= flat_max:
            index = faiss.IndexFlatIP(dim)
        elif trained is not None:
            index = trained
        else:
            nlist = nlist_for(n)
            index = trained_ivf_sq8(window_rows(codes, scales, training_rows(n, nlist, seed)), nlist)
            index.nprobe = min(nlist, FIRST_NPROBE)
        ann = cls(index)
        known = lists if trained is not None and ann.approximate else None
        for start in range(0, n, BLOCK):
            stop = min(n, start + BLOCK)
            ann.add(window_rows(codes, scales, slice(start, stop)), np.arange(start, stop),
                    None if known is None else known[start:stop])
        return ann

    @property
    def coarse(self) -> "Coarse":
        """The IVF's centroids, for exact list assignments and probes (made once)."""
        if getattr(self, "_coarse", None) is None:
            self._coarse = Coarse(self.index.quantizer)
        return self._coarse

    def add(self, vectors: np.ndarray, ids: np.ndarray, known: np.ndarray | None = None) -> None:
        """Add windows (float32 vectors) with their ids; an IVF assigns each to its exactly nearest list
        (`Coarse`), so a window lands in the same list whatever the other windows added with it. known: each
        window's list where already known (the same vector under the same training: `kept_lists`), -1 where not."""
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not self.approximate:
            self.index.add(vectors)
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if known is None:
            lists = np.ascontiguousarray(self.coarse.best(vectors, 1)[0][:, 0])
        else:
            lists = np.array(known, dtype=np.int64)
            todo = np.flatnonzero(lists < 0)
            if len(todo):
                lists[todo] = self.coarse.best(vectors[todo], 1)[0][:, 0]
        self.index.add_core(len(vectors), faiss.swig_ptr(vectors), faiss.swig_ptr(ids), faiss.swig_ptr(lists))

    def subset(self, vectors: np.ndarray, ids: np.ndarray) -> "WindowANN":
        """An IVF index with this one's training and nprobe holding only `vectors` (ids given): a search of it
        finds exactly the windows among these that a search of this index could find, with the same
        similarities (the nightly reach: which of a night's new windows a kept list's query windows find)."""
        out = WindowANN(empty_like(self.index))
        out._coarse = self.coarse
        out.add(vectors, ids)
        return out

    @property
    def training_key(self) -> str | None:
        """A digest of what decides an IVF search's result besides the windows it holds (centroids, 8-bit ranges,
        nprobe); None for a flat index. Nights stay incremental while it holds (batch/window_reach.py)."""
        if not self.approximate:
            return None
        import hashlib

        import faiss

        digest = hashlib.sha1(self.coarse.c64.astype(np.float32).tobytes())
        digest.update(faiss.vector_to_array(self.index.sq.trained).astype(np.float32).tobytes())
        digest.update(f"{self.index.nlist}/{self.index.nprobe}/{int(self.index.by_residual)}".encode())
        return digest.hexdigest()

    def probes(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lists an IVF search of these query windows (float32) visits and their similarities (Coarse): each
        window's the same in any batch, so a block's are found at once and handed to `search` group by group."""
        return self.coarse.best(np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32), self.nprobe)

    def search(self, queries: np.ndarray, k: int, probes: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(sims m x k float32, window ids m x k int64, -1 where fewer than k windows exist), best first. probes:
        `probes(queries)` when the caller found them already (an IVF index)."""
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(int(k), self.count))
        if self.approximate:  # the lists probed and their similarities exactly (Coarse): the same in any batch
            lists, coarse = self.probes(queries) if probes is None else \
                (np.ascontiguousarray(probes[0]), np.ascontiguousarray(probes[1]))

            def run():
                return self.index.search_preassigned(queries, k, lists, coarse)
        else:
            def run():
                return self.index.search(queries, k)
        if len(queries) > SMALL_SEARCH:
            sims, ids = run()
        else:  # one article's windows: OpenMP's start-up costs more than the search (the setting is per thread)
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                sims, ids = run()
            finally:
                faiss.omp_set_num_threads(threads)
        return sims, ids.astype(np.int64)

    def search_codes(self, codes: np.ndarray, scales: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` for query windows given as codes (numbers) and scales, as rank.windows.WindowScores stores
        them (windowsearch.ExactWindowSearch has the same method)."""
        return self.search(code_vectors(codes, scales), k)

    def save(self, path: str | Path) -> None:
        """FAISS's own format, written to a temporary file and renamed over `path`."""
        import faiss

        from ..common.atomic import atomic_path

        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> "WindowANN":
        """Read a saved index; mmap (the default): memory-mapped read-only, so opening costs no read of the
        vectors and a search pages in only what it visits (flat: every window; IVF: the nprobe lists)."""
        import faiss

        flags = 0
        if mmap:
            with open(path, "rb") as handle:  # the flat format maps its codes, IVF its inverted lists
                flat = handle.read(4) == b"IxFI"
            flags = faiss.IO_FLAG_READ_ONLY | (faiss.IO_FLAG_MMAP_IFC if flat else faiss.IO_FLAG_MMAP)
        index = faiss.read_index(str(path), flags)
        if not isinstance(index, (faiss.IndexFlatIP, faiss.IndexIVFScalarQuantizer)):
            raise ValueError(f"{path}: not a window index ({type(index).__name__})")
        return cls(no_prefetch(index) if isinstance(index, faiss.IndexIVFScalarQuantizer) else index)


def reusable_training(path: str | Path, n: int, dim: int):
    """An empty IVF index trained as the saved one at `path` was (its coarse centroids and 8-bit ranges), for
    n windows of dimension dim, or None when that index is flat, unreadable, of another dimension, or has not
    within 25% of the lists n windows get (nlist_for: the windows within about 0.64-1.56 times those it was
    trained for). Saves a night's k-means (most of an IVF build) and keeps its nprobe, so that a search of an
    unchanged window finds what it found before but for windows added or removed (the nightly reach follows
    window pools by that: batch/window_reach.py); the recall is measured again on the new windows all the same
    (write_window_ann trains afresh below target)."""
    import faiss

    try:
        old = WindowANN.load(path).index
    except (OSError, RuntimeError, ValueError):
        return None
    if not hasattr(old, "nprobe") or old.d != dim or not 0.8 <= old.nlist / nlist_for(n) <= 1.25:
        return None
    return empty_like(old)


def kept_lists(old_path: str | Path, old_codes: np.ndarray, old_scales: np.ndarray, codes: np.ndarray,
               scales: np.ndarray) -> np.ndarray | None:
    """Each stored window's list in the IVF index at `old_path` (built over the windows old_codes x old_scales)
    when an equal window (the same codes and scale: the same vector) was in it, else -1; None when that index is
    not an IVF over those windows. Under the same training (`reusable_training`) a window's list is a function of
    its vector alone (`Coarse`), so a night finds only its new and changed windows' lists: the others' are read
    off the old index (the float64 products of every window with every centroid: most of a night's window
    index). Windows are matched by a hash of their codes and scale, each match then compared in full."""
    import faiss

    try:
        old = WindowANN.load(old_path).index
    except (OSError, RuntimeError, ValueError):
        return None
    if not hasattr(old, "nprobe") or old.ntotal != len(old_codes) or old.d != codes.shape[1]:
        return None
    old_lists = np.full(len(old_codes), -1, dtype=np.int64)
    invlists = old.invlists
    for number in range(old.nlist):
        size = invlists.list_size(number)
        if size:
            ids = faiss.rev_swig_ptr(invlists.get_ids(number), size)
            old_lists[np.asarray(ids, dtype=np.int64)] = number
    if (old_lists < 0).any():
        return None

    def keys(c, s):
        mix = np.random.default_rng(20261206).integers(1, 2 ** 62, c.shape[1], dtype=np.int64)
        out = np.empty(len(c), dtype=np.int64)
        for start in range(0, len(c), BLOCK):  # integer products wrap: a hash, checked in full below
            out[start:start + BLOCK] = np.asarray(c[start:start + BLOCK], np.int64) @ mix
        return out ^ np.asarray(s, np.float32).view(np.int32).astype(np.int64)

    old_keys, new_keys = keys(old_codes, old_scales), keys(codes, scales)
    order = np.argsort(old_keys, kind="stable")
    at = np.minimum(np.searchsorted(old_keys[order], new_keys), len(order) - 1)
    match = order[at] if len(order) else np.zeros(len(new_keys), np.int64)
    out = np.full(len(codes), -1, dtype=np.int64)
    hit = np.flatnonzero((old_keys[match] == new_keys) if len(order) else np.zeros(len(new_keys), bool))
    for start in range(0, len(hit), BLOCK):
        rows = hit[start:start + BLOCK]
        same = (np.asarray(codes[rows]) == np.asarray(old_codes[match[rows]])).all(axis=1)
        same &= np.asarray(scales[rows], np.float32).view(np.int32) == \
            np.asarray(old_scales[match[rows]], np.float32).view(np.int32)
        out[rows[same]] = old_lists[match[rows[same]]]
    return out


def empty_like(old):
    """An empty IVF-SQ8 index with the training (coarse centroids, 8-bit ranges) and nprobe of `old`."""
    import faiss

    index = faiss.IndexIVFScalarQuantizer(faiss.clone_index(old.quantizer), old.d, old.nlist,
                                          faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    index.sq = old.sq
    index.by_residual = old.by_residual
    index.is_trained = True
    index.nprobe = old.nprobe
    return index
