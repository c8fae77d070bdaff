"""Blocks of rows: how the heavy phases split their work, and the plain in-process way to run them."""

from __future__ import annotations

from typing import Callable

import numpy as np


def blocks(n: int, block: int) -> list[tuple[int, int]]:
    """(start, stop) of each block of `block` rows of range(n)."""
    if block < 1:
        raise ValueError("block must be at least 1")
    return [(start, min(n, start + block)) for start in range(0, n, block)]


GRAM_BLOCK = 65_536  # rows of the float64 copies gram64 makes at a time (at 384 dimensions, 200 MB each)


def gram64(vectors: np.ndarray, block: int = GRAM_BLOCK, one_copy: bool = False) -> np.ndarray:
    """VᵀV in float64, summed over blocks of `block` rows, each multiplied in float64 copies of that block only
    (at 1M articles a whole float64 copy is 3 GB); up to `block` rows it is the one product it always was:
    Bᵀ @ B of one copy (one_copy) or of two."""
    gram = None
    for start in range(0, max(1, len(vectors)), block):
        part = vectors[start:start + block]
        if one_copy:
            wide = part.astype(np.float64)
            product = wide.T @ wide
        else:
            product = part.T.astype(np.float64) @ part.astype(np.float64)
        gram = product if gram is None else gram + product
    return gram


def spans(owners: np.ndarray, starts: np.ndarray):
    """(owner, start, stop) of each non-empty span of a concatenation (span k: entries starts[k]:starts[k + 1],
    all of one owner, owners[start]): a block of queries' candidates, query by query."""
    return ((int(owners[a]), a, b) for a, b in zip(starts[:-1].tolist(), starts[1:].tolist()) if b > a)


def ranges(begins: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions begins[k] .. begins[k] + lengths[k] - 1 of every range k, laid end to end (int64): the entries
    of some rows of a CSR-like array, in one gather."""
    begins, lengths = np.asarray(begins, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    return np.repeat(begins - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(
        int(lengths.sum()), dtype=np.int64)


def runs(ptr, block: int):
    """(start, stop) of each run of whole rows of a CSR-like pointer array (row i's entries are ptr[i]:ptr[i + 1])
    holding at most `block` entries, or one row when that row alone holds more: how a build's work on a matrix
    stays bounded whatever the corpus's size."""
    rows, start = len(ptr) - 1, 0
    while start < rows:
        stop = int(np.searchsorted(ptr, ptr[start] + block, side="right")) - 1
        stop = min(rows, max(start + 1, stop))
        yield start, stop
        start = stop


def map_blocks_here(fn: Callable, shared, n: int, block: int,
                    progress: Callable[[int], object] | None = None) -> list:
    """[fn(shared, start, stop) for each block of range(n)] in this process, in block order; `progress(rows)`
    after each block. The local engine's map, and the default wherever no engine is given."""
    results = []
    for start, stop in blocks(n, block):
        results.append(fn(shared, start, stop))
        if progress is not None:
            progress(stop - start)
    return results
