"""Vector index backends. One small interface; FAISS does the work.

`FlatIndex` is exact inner-product search (the vectors are unit length, so scores are cosines). Further backends
(approximate ones for large corpora) implement the same four methods and record their name in the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class VectorIndex(Protocol):
    backend: str

    @property
    def count(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each len(queries) x k, best first; rows are -1 where fewer than k exist."""
        ...

    def vector(self, row: int) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...


class FaissIndex:
    """What every FAISS-backed index shares: counts, search with k clamped to the corpus, reconstruction, save."""

    backend = ""
    approximate = False

    def __init__(self, index):
        self.index = index

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.count)) if self.count else 1
        scores, rows = self.index.search(queries, k)
        return scores, rows

    def vector(self, row: int) -> np.ndarray:
        return self.index.reconstruct(int(row))

    def vectors(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.count)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The (decoded) vectors of rows start..stop: `vectors()[start:stop]`, decoding those rows only."""
        return self.index.reconstruct_n(int(start), max(0, int(stop) - int(start)))

    def decoded(self) -> "DecodedRows":
        """`vectors()` as rows decoded when read (DecodedRows): what a query by id reads of an index without a
        mapped copy of its vectors (an approximate one), a few hundred rows, not n."""
        return DecodedRows(self)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    # In-memory transport (Ray ships the index to its workers, deepcopy copies it): FAISS's own serialisation,
    # a uint8 array, never written to disk by this path.
    def __getstate__(self) -> dict:
        import faiss

        return {"faiss": faiss.serialize_index(self.index)}

    def __setstate__(self, state: dict) -> None:
        import faiss

        self.index = faiss.deserialize_index(state["faiss"])
        if self.approximate:
            self.index.make_direct_map()


class FlatIndex(FaissIndex):
    """Exact search over unit vectors with FAISS IndexFlatIP."""

    backend = "faiss-flat-ip"
    approximate = False

    @classmethod
    def build(cls, vectors: np.ndarray) -> "FlatIndex":
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> "FlatIndex":
        import faiss

        return cls(faiss.read_index(str(path)))


class IVFIndex(FaissIndex):
    """Approximate search for large corpora: FAISS IVF with an 8-bit scalar quantiser (inner product).

    4 * sqrt(n) inverted lists, trained on a sample of at most 64 vectors per list; a query visits `nprobe` lists.
    Vectors are stored as 8-bit codes (dimension bytes + 8 bytes of id each: about 400 MB per million vectors
    of dimension 384, against 1.5 GB flat). `vector(row)` returns the decoded (approximate) vector.
    """

    backend = "faiss-ivf-sq8"
    approximate = True

    @classmethod
    def build(cls, vectors: np.ndarray, nprobe: int | None = None, seed: int = 1234) -> "IVFIndex":
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        nlist = nlist_for(n)
        index = trained_ivf_sq8(vectors[training_rows(n, nlist, seed)], nlist)
        index.add(vectors)
        index.nprobe = nprobe or default_nprobe(nlist)
        index.make_direct_map()
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> "IVFIndex":
        """Memory-mapped read-only (a loaded index is only searched and read): opening copies no vector into
        memory, a search pages in the lists it visits (a fresh process's query at 400,000 vectors: 0.09 s CPU
        less, and the index's size less in memory). The row -> list map that `vector` reads is saved with the
        index (made here for a file without it)."""
        import faiss

        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        if index.direct_map.type == faiss.DirectMap.NoMap:
            index.make_direct_map()
        return cls(no_prefetch(index))

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)


class DecodedRows:
    """An index's vectors (`FaissIndex.vectors()`, n x d float32) read by row: `rows[i]`, `rows[array]` and
    `rows[a:b]` decode those rows alone (FAISS's reconstruct: for an IVF index each row's code decoded by itself,
    so each row's numbers are those of the whole matrix decoded); `np.asarray(rows)` decodes every row. A fresh
    process's query by id on an approximate index decoded every vector at its first query (n x d: 460 MB and
    0.3 s CPU at 300,000 articles, 1.5 GB at 1M) to read the few hundred rows it scores (docs/scale.md)."""

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, index: FaissIndex):
        self.source = index
        self.shape = (index.count, index.dimension)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self.source.rows(start, max(start, stop))
            key = np.arange(start, stop, step)
        if isinstance(key, (int, np.integer)):
            row = int(key) + n if int(key) < 0 else int(key)
            if not 0 <= row < n:
                raise IndexError(f"row {int(key)} out of range for {n} vectors")
            return self.source.vector(row)
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64)
        flat = np.where(rows < 0, rows + n, rows).ravel()  # negative rows count from the end, as NumPy's
        if len(flat) and not (0 <= flat.min() and flat.max() < n):
            raise IndexError(f"rows out of range for {n} vectors")
        out = self.source.index.reconstruct_batch(flat) if len(flat) else np.zeros((0, self.shape[1]), np.float32)
        return np.asarray(out, dtype=np.float32).reshape(*rows.shape, self.shape[1])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.source.vectors()
        return out if dtype is None else out.astype(dtype, copy=False)


def no_prefetch(index):
    """A memory-mapped IVF index whose search starts no threads: FAISS's mapped lists (OnDiskInvertedLists) start
    `prefetch_nthread` (32) threads at every search to read ahead the lists it is about to visit, which the search
    then reads anyway: at 300,000 articles a query by id's dense pool cost 1.5-1.65 ms CPU with them (0.8 of it
    system time, 56 page faults), 0.6 without, the same answers (docs/scale.md, "What grows from 100,000 to
    300,000 articles")."""
    import faiss

    lists = faiss.downcast_InvertedLists(index.invlists)
    if hasattr(lists, "prefetch_nthread"):
        lists.prefetch_nthread = 0
    return index


def nlist_for(n: int) -> int:
    """Inverted lists for n vectors: 4 * sqrt(n), at least 39 vectors a list (what k-means needs to train)."""
    return max(1, min(n // 39, int(4 * np.sqrt(n))))


def training_rows(n: int, nlist: int, seed: int = 1234) -> np.ndarray | slice:
    """The rows k-means trains on: all of them, or 64 a list at most (they train it well; more only slow the
    build), sampled with a fixed seed."""
    if n <= 64 * nlist:
        return slice(None)
    return np.random.default_rng(seed).choice(n, 64 * nlist, replace=False)


def trained_ivf_sq8(sample: np.ndarray, nlist: int):
    """An empty FAISS IVF index with 8-bit scalar quantisation (inner product), trained on `sample`."""
    import faiss

    dim = sample.shape[1]
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def default_nprobe(nlist: int) -> int:
    """Lists visited per query: nlist/16 (at least 16), which gave recall@10 0.984 on the real MDN embeddings
    (374 lists), capped at 32 so that all-pairs at a million articles stays near five minutes on two cores
    (nprobe 64 would take about 12). scripts/bench.py measures the recall this gives at each size."""
    return max(1, min(nlist, 32, max(16, nlist // 16)))


# Corpora up to this size use exact flat search: its all-pairs cost (n^2) stays under a minute or two on two cores
# and its memory (1.5 KB per vector at dimension 384) under 250 MB. Above it the IVF index is faster and smaller.
FLAT_MAX = 150_000


def build_for_size(vectors: np.ndarray, flat_max: int = FLAT_MAX) -> "VectorIndex":
    """The index a corpus of this size gets: exact flat search, or IVF-SQ8 above `flat_max` vectors."""
    return FlatIndex.build(vectors) if len(vectors) <= flat_max else IVFIndex.build(vectors)


def measure_recall(index: "VectorIndex", vectors: np.ndarray, k: int = 10, queries: int = 1000,
                   seed: int = 0) -> dict:
    """recall@k of `index` against exact search (FAISS brute force over the same full-precision `vectors`), on
    `queries` sampled rows used as queries, self excluded. A result counts when its exact score reaches the
    exact k-th best score (so ties are not misses). Two figures: the index searched as it is (what a by-id
    query gets), and with 3k candidates re-scored exactly (what the batch's all-pairs step does)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    k = max(1, min(k, n - 1))
    rows = np.random.default_rng(seed).choice(n, min(queries, n), replace=False)
    exact_scores, exact_rows = faiss.knn(vectors[rows], vectors, k + 1, faiss.METRIC_INNER_PRODUCT)
    # the k-th best score of each query, self excluded (self is the first of k + 1 unless tied)
    kth = np.array([[s for s, r in zip(line_s, line_r) if r != q][k - 1]
                    for q, line_s, line_r in zip(rows, exact_scores, exact_rows)])
    _, plain = index.search(vectors[rows], k + 1)
    _, deep = index.search(vectors[rows], min(n, 3 * k + 1))
    _, deep = rescore(vectors, rows, deep)

    def recall(found: np.ndarray) -> float:
        hits = 0
        for query, got, threshold in zip(rows, found, kth):
            got = np.array([r for r in got if r != query and r >= 0][:k], dtype=np.int64)
            if len(got):
                hits += int((vectors[got] @ vectors[query] >= threshold - 1e-5).sum())
        return round(hits / (k * len(rows)), 4)

    return {f"ann_recall@{k}": recall(plain), f"ann_recall@{k}_rescored": recall(deep),
            "ann_recall_queries": int(len(rows))}


def rescore(vectors: np.ndarray, query_rows: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner products of each query with its candidates, candidates re-sorted best first."""
    safe = np.where(rows >= 0, rows, 0)
    scores = np.einsum("qd,qcd->qc", vectors[query_rows], vectors[safe], optimize=True)
    scores = np.where(rows >= 0, scores, -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


BACKENDS = {FlatIndex.backend: FlatIndex, IVFIndex.backend: IVFIndex}


def load_index(backend: str, path: Path) -> VectorIndex:
    try:
        cls = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown index backend {backend!r} (known: {', '.join(BACKENDS)})") from None
    return cls.load(path)
