"""The mention matrix made block by block straight into arrays (store.lexindex's M[a, b]: the summed weights of
b's names found in a's text, self excluded), so a build holds the matrix itself plus one block's work, whatever
the corpus's size.

    matrix = mention_csr(found, owner_arrays(names, owners), column_weights(names, weights), first, n)

`found` is the rows x names 0/1 CSR matrix of the names found in each text (columns: every name, sorted, as
`lexindex.found_arrays` and `lexindex.scan_names` make it). A block expands its rows' found names into one
entry per owner (in the order a row's names sort, then the owners' rows), drops self-mentions and names of
weight 0, and is turned into CSR by the same SciPy conversion the whole matrix went through before (COO, then
duplicates summed in its per-row order): each row's entries and float sums are those of a conversion of the
whole, so the stored matrix is byte for byte the same. At most `block` entries are expanded at a time (about
29 bytes each), and the result is written into arrays of the final size (int32 columns and float32 values,
8 bytes an entry, int64 columns above 2^31 entries as SciPy would choose).
"""

from __future__ import annotations

from itertools import chain
from typing import Sequence

import numpy as np

from .lexical import sparse

MENTION_BLOCK = 4_000_000  # entries expanded at a time (about 120 MB of work)


def owner_arrays(names: Sequence[str], owners: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, rows): the rows owning names[j] are rows[indptr[j]:indptr[j + 1]], in owners' order."""
    counts = np.fromiter((len(owners[name]) for name in names), dtype=np.int64, count=len(names))
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    rows = np.fromiter(chain.from_iterable(owners[name] for name in names), dtype=np.int64, count=int(indptr[-1]))
    return indptr, rows


def column_weights(names: Sequence[str], weights: dict[str, float]) -> np.ndarray:
    """float64 weight of each name column (0 for a name found nowhere, which adds no entry)."""
    return np.fromiter((weights.get(name, 0.0) for name in names), dtype=np.float64, count=len(names))


def mention_csr(found, owned: tuple[np.ndarray, np.ndarray], weights: np.ndarray, first: int, n: int,
                block: int | None = None):
    """Rows first..first + found.shape[0] of the mention matrix (n columns) as a SciPy CSR matrix, made at most
    `block` expanded entries at a time. found: rows x names CSR with sorted columns; owned: owner_arrays;
    weights: column_weights."""
    block = MENTION_BLOCK if block is None else block
    owner_ptr, owner_rows = owned
    found_ptr = np.asarray(found.indptr, dtype=np.int64)
    columns = np.asarray(found.indices, dtype=np.int64)
    rows = len(found_ptr) - 1
    lengths = np.where(weights[columns] > 0, owner_ptr[columns + 1] - owner_ptr[columns], 0)  # entries per name
    before = np.concatenate(([0], np.cumsum(lengths)))  # entries before each found name
    row_before = before[found_ptr]  # entries before each row
    values = weights.astype(np.float32)  # each weight as the float32 it is stored as
    upper = int(row_before[-1])  # entries before duplicates are summed: the matrix has at most this many
    wide = max(upper, n) > np.iinfo(np.int32).max
    out_indices = np.empty(upper, dtype=np.int64 if wide else np.int32)
    out_data = np.empty(upper, dtype=np.float32)
    out_indptr = np.zeros(rows + 1, dtype=np.int64)
    start, nnz = 0, 0
    while start < rows:
        stop = int(np.searchsorted(row_before, row_before[start] + block, side="right")) - 1
        stop = min(rows, max(start + 1, stop))
        part = expand_rows(found_ptr, columns, lengths, before, owner_ptr, owner_rows, values, start, stop, first, n)
        count = part.nnz
        out_indices[nnz:nnz + count] = part.indices
        out_data[nnz:nnz + count] = part.data
        out_indptr[start + 1:stop + 1] = part.indptr[1:] + nnz
        nnz += count
        start = stop
    return sparse.csr_matrix((out_data[:nnz], out_indices[:nnz], out_indptr), shape=(rows, n))


def expand_rows(found_ptr, columns, lengths, before, owner_ptr, owner_rows, values, start: int, stop: int,
                first: int, n: int):
    """Rows start..stop (of the block's found matrix) as CSR: one entry per (found name, owner), self excluded,
    duplicates summed by SciPy's COO -> CSR conversion."""
    a, b = int(found_ptr[start]), int(found_ptr[stop])
    names, counts = columns[a:b], lengths[a:b]
    total = int(before[b] - before[a])
    local = np.repeat(np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(found_ptr[start:stop + 1])), counts)
    # position in owner_rows of each entry: its name's first owner, plus its place among the name's owners
    at = np.repeat(owner_ptr[names] - (before[a:b] - before[a]), counts) + np.arange(total, dtype=np.int64)
    cols = owner_rows[at]
    keep = cols != local + (first + start)
    data = np.repeat(values[names], counts)
    matrix = sparse.coo_matrix((data[keep], (local[keep], cols[keep])), shape=(stop - start, n))
    return matrix.tocsr()  # duplicates (two names of b in a) are summed, as for the whole matrix
