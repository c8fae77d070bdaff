"""The mentions in both directions (M + Mᵀ: a names b, or b names a) read by rows from M and Mᵀ themselves, never
stored or made as a third matrix (at 1M articles M + Mᵀ is 1.2 billion entries, 9.7 GB): a row of the sum is
the union of M's row and Mᵀ's, sorted by column, the two values added where both have the column. Float32
addition is commutative, so each value is the very number SciPy's `(M + M.T.tocsr()).tocsr()` stores (M's
entries are positive weights: no sum is 0, none dropped). NumPy alone: a query by id imports no SciPy.

    both = BothWays((m_indptr, m_indices, m_data), (t_indptr, t_indices, t_data), n)
    cols, values = both.row(r)          # sorted columns (int64) and float32 values of row r of M + Mᵀ

`Summed` reads an index written before, which stored M + Mᵀ itself (`query:mentions_*`), through the same calls.
Stored: M in the lexical file (its `mentions_*` members, read mapped by `lexical_mentions`), Mᵀ as an index
version's `.npy` files (`write_turned`, at build; rank.querydata names them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PARTS = ("data", "indices", "indptr")
MENTIONS = ("mentions_data", "mentions_indices", "mentions_indptr")  # M, in the lexical file (its members)


def _row(csr, row: int) -> tuple[np.ndarray, np.ndarray]:
    indptr, indices, data = csr
    a, b = int(indptr[row]), int(indptr[row + 1])
    return np.asarray(indices[a:b], dtype=np.int64), np.asarray(data[a:b], dtype=np.float32)


class BothWays:
    """M + Mᵀ by rows, from M's CSR arrays and Mᵀ's (each (indptr, indices, data), sorted columns)."""

    def __init__(self, mentions, turned, n: int):
        self.mentions = tuple(np.asarray(a) for a in mentions)
        self.turned = tuple(np.asarray(a) for a in turned)
        self.shape = (n, n)

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Row `row` of M + Mᵀ: (sorted columns, float32 values)."""
        cols, values = _row(self.mentions, row)
        t_cols, t_values = _row(self.turned, row)
        if not len(t_cols):
            return cols, values
        if not len(cols):
            return t_cols, t_values
        cols, values = np.concatenate([cols, t_cols]), np.concatenate([values, t_values])
        order = np.argsort(cols, kind="stable")  # M's entry first where both have a column
        cols, values = cols[order], values[order]
        twice = np.flatnonzero(cols[1:] == cols[:-1])  # each column is at most once in M's row and once in Mᵀ's
        if len(twice):
            values[twice] += values[twice + 1]
            keep = np.ones(len(cols), dtype=bool)
            keep[twice + 1] = False
            cols, values = cols[keep], values[keep]
        return cols, values

    def most(self, rows: np.ndarray) -> np.ndarray:
        """At most how many entries each of `rows` has (M's row and Mᵀ's: fewer where both have a column)."""
        m, t = self.mentions[0], self.turned[0]
        return (np.asarray(m[rows + 1], np.int64) - m[rows]) + (np.asarray(t[rows + 1], np.int64) - t[rows])

    def negative(self) -> bool:
        """Whether a stored value may be negative (one of M's is: the sum's zeros may then not be its smallest)."""
        data = self.mentions[2]
        return bool(len(data)) and float(data.min()) < 0


class Summed(BothWays):
    """M + Mᵀ stored as one CSR matrix (an index written before BothWays), read through the same calls."""

    def __init__(self, both, n: int):
        self.mentions = tuple(np.asarray(a) for a in both)
        self.turned = None
        self.shape = (n, n)

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        return _row(self.mentions, row)

    def most(self, rows: np.ndarray) -> np.ndarray:
        indptr = self.mentions[0]
        return np.asarray(indptr[rows + 1], np.int64) - indptr[rows]


def lexical_mentions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M's arrays (indptr, indices, data) mapped from a lexical file's `mentions_*` members: plain views, no copy,
    no SciPy; IndexProblem naming the file when they cannot be read."""
    import zipfile

    from .manifest import IndexProblem
    from .npyfiles import mapped_npz

    try:
        arrays = mapped_npz(path, MENTIONS)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise IndexProblem(f"{path}: cannot read the mentions ({exc}); rebuild the index") from None
    return tuple(np.asarray(arrays[f"mentions_{p}"]) for p in ("indptr", "indices", "data"))


def write_turned(folder: Path, stem: str, prefix: str, mentions, turned=None, turned_files: Path | None = None) -> dict:
    """Mᵀ of `mentions` (M, SciPy CSR) as `{stem}-mentions_t_{data,indices,indptr}.npy`: turned_files moved in
    when they stand (GBs at 1M articles: not copied), else `turned` (or M turned here) written by blocks of rows.
    The query data's Mᵀ (rank.querydata) and, for an index whose learned arrays keep their own, theirs."""
    import os

    from .manifest import file_entry
    from .mentionmatrix import row_blocks, transpose
    from .npyfiles import write_csr_files

    files = {part: Path(f"{turned_files}_{part}") for part in PARTS} if turned_files is not None else {}
    if files and all(path.exists() for path in files.values()):
        entries = {}
        for part, path in files.items():
            os.replace(path, folder / f"{stem}-mentions_t_{part}.npy")
            entries[f"{prefix}mentions_t_{part}"] = file_entry(folder / f"{stem}-mentions_t_{part}.npy")
        return entries
    turned = transpose(mentions) if turned is None else turned
    return write_csr_files(folder, stem, prefix, "mentions_t", lambda: row_blocks(turned))
