"""What a query by id reads the index folder's mapped arrays (recommender.rank.querydata) through, in NumPy alone
and with SciPy's numbers, so that a query loads neither the lexical index's matrices nor its vocabulary: the part
of lexindex.LexicalIndex it uses (MappedLexical) and the few CSR operations of the pair signals (MappedCSR);
anything else goes to the full objects, made on first use."""

from __future__ import annotations

import numpy as np

from ..common.blocks import ranges

ROW_BLOCK = 8  # more query rows than this at once: the lexical index's sparse product (same numbers, faster)


class MappedLexical:
    """The part of lexindex.LexicalIndex a query by id uses (tfidf_rows, mention_rows, count), over mapped
    arrays and NumPy alone; anything else (text queries, explanations, many rows at once) goes to the full
    lexical index, loaded on first use."""

    def __init__(self, data, full):  # data: querydata.QueryData; full: () -> the LexicalIndex
        self.data = data
        self._full = full
        self.count = data.count

    def __getattr__(self, name: str):
        return getattr(self._full(), name)

    def csr_arrays(self) -> dict:
        """The mapped arrays the two-stage ranking reads (lexindex.LexicalIndex.csr_arrays), with the corpus's
        mean TF-IDF row when it was stored."""
        a = self.data.array
        out = {name: (a(f"{name}_indptr"), a(f"{name}_indices"), a(f"{name}_data")) for name in ("tfidf", "postings")}
        out["mentions"] = self.data.both_ways()
        for name in ("tfidf_mean", "postings_max"):
            if self.data.has(name):
                out[name] = a(name)
        if self.data.has("impacts_indices"):
            out["impacts"] = (a("impacts_indices"), a("impacts_data"))
        if all(self.data.has(f"lexical_sample_{p}") for p in ("starts", "owner", "values")):
            out["lexical_sample"] = tuple(a(f"lexical_sample_{p}") for p in ("starts", "owner", "values"))
        return out

    @property
    def vocabulary_size(self) -> int:
        return len(self.data.array("postings_indptr")) - 1

    def tfidf_rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x n) TF-IDF cosines: for each of the row's terms in stored order, its weight times the
        term's postings, added in float32 in that order (what SciPy's CSR product does, so the same numbers)."""
        rows = np.asarray(rows)
        if len(rows) > ROW_BLOCK:
            return self._full().tfidf_rows(rows)
        a = self.data.array
        indptr, indices, data = a("tfidf_indptr"), a("tfidf_indices"), a("tfidf_data")
        p_indptr, p_indices, p_data = a("postings_indptr"), a("postings_indices"), a("postings_data")
        out = np.zeros((len(rows), self.count), dtype=np.float32)
        for i, row in enumerate(rows):
            start, stop = int(indptr[row]), int(indptr[row + 1])
            terms = np.asarray(indices[start:stop], dtype=np.int64)
            weights = np.asarray(data[start:stop], dtype=np.float32)
            if not len(terms):
                continue
            begins, ends = p_indptr[terms].astype(np.int64), p_indptr[terms + 1].astype(np.int64)
            lengths = ends - begins
            at = ranges(begins, lengths)
            products = np.asarray(p_data[at], dtype=np.float32) * np.repeat(weights, lengths)
            np.add.at(out[i], np.asarray(p_indices[at], dtype=np.int64), products)
        return out

    def mention_rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x n) mention weights in both directions."""
        rows = np.asarray(rows)
        if len(rows) > ROW_BLOCK:
            return self._full().mention_rows(rows)
        both = self.data.both_ways()
        out = np.zeros((len(rows), self.count), dtype=np.float32)
        for i, row in enumerate(rows):
            cols, values = both.row(int(row))
            out[i, cols] = values
        return out


class MappedCSR:
    """The few SciPy CSR operations the pair signals use (rows, one row's transpose, their product, multiply by a
    row of weights, nnz), in NumPy over mapped arrays, with SciPy's numbers: float32 products added one by one in
    stored order, as its sparse product adds them. Anything else is handed to a SciPy matrix made on the spot."""

    def __init__(self, data, indices, indptr, shape):
        self.data, self.indices, self.indptr, self.shape = data, indices, indptr, tuple(shape)

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1] - self.indptr[0])

    @property
    def T(self):
        return _OneRowT(self) if self.shape[0] == 1 else self.tocsr().T

    def tocsr(self):
        """The same matrix as SciPy's csr_matrix (made on each call), as SciPy's own `tocsr` gives."""
        from scipy.sparse import csr_matrix

        return csr_matrix((np.asarray(self.data), np.asarray(self.indices), np.asarray(self.indptr)),
                          shape=self.shape)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("data", "indices", "indptr", "shape"):
            raise AttributeError(name)
        return getattr(self.tocsr(), name)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            key = np.array([key])
        if not (isinstance(key, np.ndarray) and key.ndim == 1 and key.dtype.kind in "iu"):
            return self.tocsr()[key]
        rows = np.where(key < 0, key + self.shape[0], key).astype(np.int64)
        begins = np.asarray(self.indptr[rows], dtype=np.int64)
        lengths = np.asarray(self.indptr[rows + 1], dtype=np.int64) - begins
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        at = np.repeat(begins - indptr[:-1], lengths) + np.arange(indptr[-1])
        return MappedCSR(np.asarray(self.data[at]), np.asarray(self.indices[at]), indptr,
                         (len(rows), self.shape[1]))

    def multiply(self, other):
        if self.shape[0] == 1 and isinstance(other, np.ndarray) and other.shape == (1, self.shape[1]):
            return MappedCSR(np.asarray(self.data) * other[0, self.indices], self.indices, self.indptr, self.shape)
        return self.tocsr().multiply(other)

    def __matmul__(self, other):
        if isinstance(other, _OneRowT) and other.row.shape[1] == self.shape[1]:
            weights = np.zeros(self.shape[1], dtype=np.result_type(self.data, other.row.data))
            weights[other.row.indices] = other.row.data
            out = np.zeros(self.shape[0], dtype=weights.dtype)
            owner = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
            present = np.zeros(self.shape[1], dtype=bool)
            present[other.row.indices] = True
            mine = present[self.indices]  # SciPy adds only the terms the row has
            np.add.at(out, owner[mine], (self.data * weights[self.indices])[mine])
            return _Dense(out[:, None])
        other = other.csr() if isinstance(other, _OneRowT) else other
        return self.tocsr() @ (other.tocsr() if isinstance(other, MappedCSR) else other)


class _OneRowT:
    """A one-row MappedCSR, transposed (a column) for a product."""

    def __init__(self, row: MappedCSR):
        self.row = row

    def csr(self):
        return self.row.tocsr().T

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "row":
            raise AttributeError(name)
        return getattr(self.csr(), name)


class _Dense:
    """A product's result, read as SciPy's is (`.todense()`, `.toarray()`)."""

    def __init__(self, values: np.ndarray):
        self.values = values

    def todense(self) -> np.ndarray:
        return self.values

    toarray = todense
