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


class FlatIndex:
    """Exact search over unit vectors with FAISS IndexFlatIP."""

    backend = "faiss-flat-ip"

    def __init__(self, index):
        self.index = index

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

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))


BACKENDS = {FlatIndex.backend: FlatIndex}


def load_index(backend: str, path: Path) -> VectorIndex:
    try:
        cls = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown index backend {backend!r} (known: {', '.join(BACKENDS)})") from None
    return cls.load(path)
