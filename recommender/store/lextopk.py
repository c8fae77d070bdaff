"""Top-k documents by TF-IDF cosine from posting lists (term -> documents), without scoring every document.

    topk = PostingsTopK(indptr, indices, data, n_docs)      # the postings: CSR arrays of the (terms x docs) matrix
    rows, scores = topk.top_k(terms, weights, k)             # one query: its TF-IDF row's terms and weights

The arrays may be memory-mapped (a query by id maps them from the index folder, recommender.rank.querydata); only
NumPy is used. Interface placeholder: exact by accumulating every posting of the query's terms (the cost of a
sparse product against every document); replaced by a pruned top-k (MaxScore) in the same interface.
"""

from __future__ import annotations

import numpy as np


class PostingsTopK:
    """Exact top-k of sum_t weights[t] * postings[t, doc] over the documents sharing a term with the query."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_docs: int):
        self.indptr, self.indices, self.data, self.n_docs = indptr, indices, data, int(n_docs)

    @classmethod
    def from_matrix(cls, tfidf) -> "PostingsTopK":
        """From a SciPy CSR (docs x terms) TF-IDF matrix."""
        postings = tfidf.T.tocsr()
        postings.sort_indices()
        return cls(postings.indptr, postings.indices, postings.data, tfidf.shape[0])

    def top_k(self, terms: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows int64, scores float32) of the k best documents, best first (ties: lower row first); fewer when
        fewer documents share a term with the query."""
        terms = np.asarray(terms, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float32)
        if not len(terms) or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        begins = np.asarray(self.indptr[terms], dtype=np.int64)
        lengths = np.asarray(self.indptr[terms + 1], dtype=np.int64) - begins
        at = np.repeat(begins - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(lengths.sum())
        docs = np.asarray(self.indices[at], dtype=np.int64)
        scores = np.zeros(self.n_docs, dtype=np.float32)
        np.add.at(scores, docs, np.asarray(self.data[at], dtype=np.float32) * np.repeat(weights, lengths))
        touched = np.flatnonzero(scores > 0)
        order = np.lexsort((touched, -scores[touched]))[:k]
        return touched[order], scores[touched[order]]
