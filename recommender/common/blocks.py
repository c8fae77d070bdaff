"""Blocks of rows: how the heavy phases split their work, and the plain in-process way to run them."""

from __future__ import annotations

from typing import Callable

import numpy as np


def blocks(n: int, block: int) -> list[tuple[int, int]]:
    """(start, stop) of each block of `block` rows of range(n)."""
    if block < 1:
        raise ValueError("block must be at least 1")
    return [(start, min(n, start + block)) for start in range(0, n, block)]


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
