"""Top-k maths over plain arrays, with no model and no index: the reference the FAISS results are tested
against, and the helpers that turn raw neighbour lists into related lists (self excluded)."""

from __future__ import annotations

import numpy as np


def topk_bruteforce(queries: np.ndarray, corpus: np.ndarray, k: int,
                    exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product. `exclude[i]` is a corpus row to leave out for query i (or -1).

    Ties are broken by the lower row first. Returns (scores, rows), each len(queries) x min(k, available).
    """
    scores = np.atleast_2d(queries).astype(np.float32) @ corpus.astype(np.float32).T
    if exclude is not None:
        for i, row in enumerate(exclude):
            if row >= 0:
                scores[i, row] = -np.inf
    k = min(k, corpus.shape[0] - (1 if exclude is not None else 0))
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def drop_rows(scores: np.ndarray, rows: np.ndarray, excluded: set[int], k: int) -> list[tuple[int, float]]:
    """The first k (row, score) pairs of one neighbour list, skipping excluded rows and FAISS's -1 padding."""
    out: list[tuple[int, float]] = []
    for score, row in zip(scores, rows):
        if row < 0 or int(row) in excluded:
            continue
        out.append((int(row), float(score)))
        if len(out) == k:
            break
    return out


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique of a 1-d integer array, without the numpy.ma import that np.unique costs a fresh process."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def top_columns(scores: np.ndarray, k: int, stride: int = 8) -> np.ndarray:
    """The columns of each row's k largest values, in no order: what np.argpartition(-scores, k - 1)[:, :k] gives
    (with ties at the k-th value, some of them). The k-th largest of every stride-th column is at most the row's
    k-th largest, so only the values at or above it (about stride x k of them) are partitioned, not the whole row."""
    count, n = scores.shape
    k = min(k, n)
    if n < 8 * stride * k:  # a short row: the sample would keep too much of it
        return np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (count, 1))
    sample = -scores[:, ::stride]
    floor = -np.partition(sample, k - 1, axis=1)[:, k - 1]
    out = np.empty((count, k), dtype=np.intp)
    for i in range(count):
        cols = np.flatnonzero(scores[i] >= floor[i])
        out[i] = cols[np.argpartition(-scores[i, cols], k - 1)[:k]]
    return out
