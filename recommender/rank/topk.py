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


def stable_order(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable") of non-negative integers below 2^32, by NumPy's radix sort of 16-bit keys
    (one pass below 2^16, else the low half's order then the high half's): the same permutation in linear time,
    where a stable sort of wider integers is a merge sort (0.07 s against 0.015 for 0.9M keys)."""
    keys = np.asarray(keys)
    if not len(keys) or keys.min() < 0 or keys.max() >= 1 << 32:
        return np.argsort(keys, kind="stable")
    if keys.max() < 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]


def top_columns(scores: np.ndarray, k: int, stride: int = 8) -> np.ndarray:
    """The columns of each row's k largest values, in no order; of the values tied with the k-th largest, the
    lowest columns. The k-th largest of every stride-th column is at most the row's k-th largest, so only the values
    at or above it (about stride x k of them) are partitioned, not the whole row."""
    count, n = scores.shape
    if k >= n:
        return np.tile(np.arange(n), (count, 1))
    floor = np.full(count, -np.inf, dtype=scores.dtype)
    if n >= 8 * stride * k:  # else the sample would keep too much of a short row: every column is partitioned
        floor = -np.partition(-scores[:, ::stride], k - 1, axis=1)[:, k - 1]
    out = np.empty((count, k), dtype=np.intp)
    for i in range(count):
        row = scores[i]
        cols = np.flatnonzero(row >= floor[i]) if np.isfinite(floor[i]) else np.arange(n)
        values = row[cols]
        best = np.argpartition(-values, k - 1)[:k]
        kth = values[best].min()
        if np.count_nonzero(values == kth) > np.count_nonzero(values[best] == kth):  # ties left out: lowest first
            best = np.concatenate([best[values[best] > kth], np.flatnonzero(values == kth)])[:k]
        out[i] = cols[best]
    return out
