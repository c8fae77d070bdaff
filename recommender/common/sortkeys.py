"""Sort keys that order float32 values exactly as float32 compares them, packed beside a group number in one
uint64, so that one stable sort (or a search) orders by (group ascending, value descending) instead of a lexsort
over several keys: used by the impact-ordered postings (store.lextopk), the window records' merge
(batch.window_batch) and the pools' order in the nightly reach (batch.pool_follow.by_value)."""

from __future__ import annotations

import numpy as np


def descending_keys(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """uint64 keys ordering (group ascending, value descending) exactly as float32 compares (-0.0 == 0.0). groups:
    non-negative integers below 2^32."""
    return (np.asarray(groups).astype(np.uint64) << np.uint64(32)) | _descending(values)


def value_then_row_keys(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """uint64 keys ordering (value descending, row ascending) exactly as float32 compares: values float32 (or
    float64 holding float32 values), rows non-negative integers below 2^32."""
    return (_descending(values) << np.uint64(32)) | np.asarray(rows).astype(np.uint64)


def _descending(values: np.ndarray) -> np.ndarray:
    """Each float32 value's rank bits, ascending as the values descend (uint64 below 2^32; -0.0 as 0.0)."""
    bits = (np.asarray(values, np.float32) + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    ascending = np.where(bits >= 0x80000000, 0xFFFFFFFF - bits, bits + 0x80000000)
    return np.uint64(0xFFFFFFFF) - ascending
