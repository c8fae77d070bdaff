"""Nearest stored windows to query windows, from an index built for top-k (FAISS), so a query's window pool is
found without a product against every stored window.

    ann = WindowANN.build(window_vectors)          # float32, unit length (the stored windows, dequantised)
    sims, ids = ann.search(query_windows, k)       # each query window's k nearest stored windows (-1 padded)

Interface placeholder: an exact flat inner-product index built in memory; the stored, size-dependent index
(flat for small sites, IVF for large ones) comes in the same interface.
"""

from __future__ import annotations

import numpy as np


class WindowANN:
    approximate = False

    def __init__(self, index, count: int):
        self.index, self.count = index, count

    @classmethod
    def build(cls, vectors: np.ndarray) -> "WindowANN":
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index, len(vectors))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(sims m x k float32, window ids m x k int64, -1 where fewer than k windows exist), best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(int(k), self.count))
        sims, ids = self.index.search(queries, k)
        return sims, ids.astype(np.int64)
