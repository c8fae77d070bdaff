"""Top-k documents by TF-IDF cosine from posting lists (term -> documents), without scoring every document.

    topk = PostingsTopK(indptr, indices, data, n_docs)      # the postings: CSR arrays of the (terms x docs) matrix
    rows, scores = topk.top_k(terms, weights, k)             # one query: its TF-IDF row's terms and weights
    topk.top_k_many(indptr, indices, data, k)                # a block of query rows (CSR arrays) -> [(rows, scores)]

The arrays may be memory-mapped (a query by id maps them from the index folder, recommender.rank.querydata); only
NumPy is used. The top-k is exact (the same documents and scores, up to float32 rounding, as a sparse product
against every document) and reads only part of the long posting lists, term-at-a-time MaxScore with two bounds on
what the terms not read yet can add to a document's score (sum_t w_t x_t over the remaining terms t):

* each term's largest posting (`term_max`, stored with the index): at most sum_t w_t * term_max[t];
* the documents' rows are l2-normalised, so by Cauchy-Schwarz at most ||w_rest|| (the remaining weights' norm).

Terms are read by weight per posting (w_t² / list length, the norm bound's gain per posting read), so the short
lists of rare, heavy terms come first and the long lists of common, light words last. Every posting of a term is
added while a document not seen yet could still reach the k-th best score so far (a lower bound of the final
one); after that the documents seen are the only candidates: those whose score plus the bound falls below the
k-th best are dropped, and each remaining term is added to the survivors by a binary search of its sorted
postings when that is cheaper than a pass over the list. What this saves depends on the corpus: whole articles
as queries over a corpus without topics leave a low k-th score against many light terms (figures in
docs/scale.md).
"""

from __future__ import annotations

import threading

import numpy as np

from ..common.blocks import ranges, runs
from ..common.sortkeys import descending_keys
from .compiledtopk import ACTIVE, head_top_k

MARGIN = 1e-4  # added to every bound, relative and absolute: float32 sums and norms differ far less from exact ones
ONE_PASS = 4096  # a query whose lists average fewer postings: one pass over them all (Python's cost per term)
PROBE_COST = 2.0  # a binary-search step costs about this many postings read in a pass (calibrated in the bench)


class PostingsTopK:
    """Exact top-k of sum_t weights[t] * postings[t, doc] over the documents sharing a term with the query.

    The bounds need what TF-IDF rows are: postings >= 0, each document's row of l2 norm at most 1, each term's
    postings sorted by document, and query weights >= 0 (a negative one is refused; zero weights are ignored).

    `term_max`: the largest posting of each term (`term_maxima()` computes it; store it with the postings so that
    a query does not read every posting to find it). `postings_read` counts the postings read or probed by every
    top_k so far (a pass over a list reads all of it; a binary search of m candidates in a list of L postings reads
    about m * log2(L) of them). `one_pass`: a query whose lists average at most this many postings is answered by
    one pass over them all (cheaper than pruning in Python term by term)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_docs: int,
                 term_max: np.ndarray | None = None):
        self.indptr, self.indices, self.data, self.n_docs = indptr, indices, data, int(n_docs)
        self._term_max = term_max
        self.postings_read = 0
        self.one_pass = ONE_PASS

    @classmethod
    def from_matrix(cls, tfidf, term_max: np.ndarray | None = None) -> "PostingsTopK":
        """From a SciPy CSR (docs x terms) TF-IDF matrix."""
        postings = tfidf.T.tocsr()
        postings.sort_indices()
        return cls(postings.indptr, postings.indices, postings.data, tfidf.shape[0], term_max)

    @property
    def term_max(self) -> np.ndarray:
        if self._term_max is None:
            self._term_max = self.term_maxima()
        return self._term_max

    def term_maxima(self) -> np.ndarray:
        """float32 per term: its largest posting (0 for a term without postings). Reads every posting."""
        indptr = np.asarray(self.indptr, dtype=np.int64)
        out = np.zeros(len(indptr) - 1, dtype=np.float32)
        nonempty = np.flatnonzero(indptr[1:] > indptr[:-1])
        if len(nonempty):
            data = np.asarray(self.data[indptr[0]:indptr[-1]], dtype=np.float32)
            out[nonempty] = np.maximum.reduceat(data, indptr[nonempty] - indptr[0])
        return out

    def top_k_many(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                   k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """top_k of each query row of a block given as CSR arrays (terms = indices, weights = data)."""
        return [self.top_k(indices[indptr[i]:indptr[i + 1]], data[indptr[i]:indptr[i + 1]], k)
                for i in range(len(indptr) - 1)]

    def top_k(self, terms: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows int64, scores float32) of the k best documents, best first (ties: lower row first); fewer when
        fewer documents share a term with the query."""
        terms = np.asarray(terms, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float32)
        if len(weights) and weights.min() < 0:
            raise ValueError("PostingsTopK.top_k: a query weight is negative (the bounds need TF-IDF weights >= 0)")
        keep = weights > 0
        if not keep.all():
            terms, weights = terms[keep], weights[keep]
        if not len(terms) or k <= 0:
            return _empty()
        begins = np.asarray(self.indptr[terms], dtype=np.int64)
        lengths = np.asarray(self.indptr[terms + 1], dtype=np.int64) - begins
        bounds = weights.astype(np.float64) * np.asarray(self.term_max[terms], dtype=np.float64)
        # the most weight (squared: the norm bound) per posting read first; on a tie the shorter list
        order = np.lexsort((lengths, -(weights.astype(np.float64) ** 2) / np.maximum(lengths, 1)))
        order = order[lengths[order] > 0]
        if not len(order):
            return _empty()
        begins, lengths, bounds = begins[order], lengths[order], bounds[order]
        if lengths.sum() <= self.one_pass * len(order):  # short lists: one vectorised pass costs less
            return self._one_pass(begins, lengths, weights[order], k)
        w = weights[order]
        # rest_sum[i], rest_norm[i]: the two bounds of what terms i.. can add (i = len: nothing)
        rest_sum = np.concatenate((np.cumsum(bounds[::-1])[::-1], [0.0]))
        rest_norm = np.sqrt(np.concatenate((np.cumsum((w.astype(np.float64) ** 2)[::-1])[::-1], [0.0])))
        unseen = np.minimum(rest_sum, rest_norm) * (1 + MARGIN) + MARGIN  # bound of a document not seen before i
        acc = np.zeros(self.n_docs, dtype=np.float32)
        n_terms, i, threshold = len(w), 0, -1.0
        budget = max(4096, int(lengths.sum()) // 8)
        # phase 1: read whole lists while a document not seen yet could still make the top k
        while i < n_terms and unseen[i] >= threshold:
            stop = i + 1 + int(np.searchsorted(np.cumsum(lengths[i + 1:]), budget))
            below = np.flatnonzero(unseen[i + 1:] < threshold)
            if len(below):  # no further than where the bound falls below the k-th best known
                stop = min(stop, i + 1 + int(below[0]))
            for j in range(i, min(stop, n_terms)):
                self._add(acc, begins[j], lengths[j], w[j])
            i = min(stop, n_terms)
            budget *= 2
            seen = np.flatnonzero(acc)
            if len(seen) >= k:
                threshold = float(np.partition(acc[seen], len(seen) - k)[len(seen) - k])
        if i == n_terms:
            return _best(seen, acc[seen], k)
        # phase 2: the documents seen are the only candidates; add the remaining terms to them, dropping any
        # that cannot reach the k-th best any more
        cands = seen
        for j in range(i, n_terms):
            scores = acc[cands]
            reach = min(rest_sum[j], rest_norm[j])
            alive = scores + reach * (1 + MARGIN) + MARGIN >= threshold
            if not alive.all():
                cands = cands[alive]
            begin, length = begins[j], lengths[j]
            steps = len(cands) * max(1.0, np.log2(length))
            if steps * PROBE_COST >= length:
                self._add(acc, begin, length, w[j])
            else:
                scores = acc[cands]
                self._probe(scores, cands, begin, length, w[j])
                acc[cands] = scores
            if len(cands) > k:
                threshold = max(threshold, float(np.partition(acc[cands], len(cands) - k)[len(cands) - k]))
        return _best(cands, acc[cands], k)

    def _one_pass(self, begins: np.ndarray, lengths: np.ndarray, weights: np.ndarray, k: int):
        """Every posting of every term, in one vectorised pass (what a sparse product does)."""
        at = ranges(begins, lengths)
        docs = np.asarray(self.indices[at], dtype=np.int64)
        acc = np.zeros(self.n_docs, dtype=np.float32)
        np.add.at(acc, docs, np.asarray(self.data[at], dtype=np.float32) * np.repeat(weights, lengths))
        self.postings_read += len(at)
        seen = np.flatnonzero(acc)
        return _best(seen, acc[seen], k)

    def _probe(self, scores: np.ndarray, docs: np.ndarray, begin: int, length: int, weight) -> None:
        """scores[i] += weight * postings[docs[i]] for the documents (sorted rows) in one term's list."""
        listed = self.indices[begin:begin + length]
        at = np.minimum(np.searchsorted(listed, docs), length - 1)
        hit = listed[at] == docs
        scores[hit] += weight * np.asarray(self.data[begin + at[hit]], dtype=np.float32)
        self.postings_read += int(len(docs) * max(1.0, np.log2(length)))

    def _add(self, acc: np.ndarray, begin: int, length: int, weight: np.float32) -> None:
        """Every posting of one term into the accumulators (a term's postings name each document once)."""
        acc[self.indices[begin:begin + length]] += weight * np.asarray(self.data[begin:begin + length], np.float32)
        self.postings_read += int(length)


def _best(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best of (rows sorted ascending, their scores > 0), best first, ties by lower row."""
    positive = scores > 0
    rows, scores = rows[positive], scores[positive]
    if len(rows) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        top = scores >= kth
        rows, scores = rows[top], scores[top]
    order = np.lexsort((rows, -scores))[:k]
    return rows[order].astype(np.int64), scores[order].astype(np.float32)


_SCRATCH = threading.local()  # each thread's scratch array for `distinct` (a service answers in several threads)


def distinct(docs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct documents of `docs` (0 <= doc < n), in no particular order; each entry's place among them):
    what np.unique (return_inverse) gives but for the order, without its sort (at 65,536 postings read, 1-2 ms of
    a query at 300,000 articles), through a scratch array of n entries written and read at `docs` alone (so
    never cleared: what other queries left there is never read), kept for the thread's next query."""
    owner = getattr(_SCRATCH, "owner", None)
    if owner is None or len(owner) < n:
        owner = _SCRATCH.owner = np.empty(n, dtype=np.int32)
    at = np.arange(len(docs), dtype=np.int32)
    np.put(owner, docs, at)  # each document's place holds one of its entries (whichever was written last)
    kept = np.take(owner, docs)  # each entry's document's kept entry
    first = kept == at  # one entry of each document, in order
    # each entry's place among the documents: its kept entry's rank among the kept ones, read from an array of
    # the entries' size (in the cache) rather than written into the scratch array and read back (each a random
    # access into n entries: most of the time here at 1M articles)
    return docs[first], np.take(np.cumsum(first, dtype=np.int32) - 1, kept)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.float32)


IMPACT_BLOCK = 4_000_000  # postings sorted at a time (whole terms; about 100 MB of work)


def impact_order(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The postings of each term reordered by value, largest first (ties: lower document), with the same indptr:
    what `ImpactTopK` reads the head of. (indices, data). Sorted a run of whole terms at a time (at most
    IMPACT_BLOCK postings, or one term's), so the work does not grow with the corpus."""
    indptr = np.asarray(indptr, dtype=np.int64)
    indices, data = np.asarray(indices), np.asarray(data)
    out_indices, out_data = np.empty_like(indices), np.empty_like(data)
    for start, stop in runs(indptr, IMPACT_BLOCK):
        a, b = int(indptr[start]), int(indptr[stop])
        term = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(indptr[start:stop + 1]))
        values = np.asarray(data[a:b], dtype=np.float32)
        if bool((np.diff(indices[a:b].astype(np.int64)) > 0)[np.diff(term) == 0].all()):
            # each term's documents ascending (a sorted CSR): one stable sort by (term, value desc) keeps them in
            # order among equal values, as the lexsort below does (about 5x faster)
            order = np.argsort(descending_keys(term, values), kind="stable")
        else:
            order = np.lexsort((indices[a:b], -values, term))
        out_indices[a:b], out_data[a:b] = indices[a:b][order], data[a:b][order]
    return out_indices, out_data


DENSE_SUMS = 4  # ImpactTopK sums in an array of the corpus's size up to this many documents per posting read


class ImpactTopK:
    """Lexical candidates at a bounded cost, for queries whose posting lists are long: each query term's postings
    are read from the head of its impact-ordered list (largest values first), about `budget` postings in all,
    shared among the terms by their squared weight (each term at least `min_per_term`: a heavy, rare term's short
    list whole, a light common word's long list only its head); the documents are ranked by the partial sums read,
    accumulated over the documents read alone (`distinct`; an array of sums of the corpus's size only while it is at
    most DENSE_SUMS times the read), so the cost does not follow n; in a process that asked
    `compiledtopk.use_compiled` (the batch, the service), the same sums and top-k in one compiled loop. Not exact:
    `top_k` also returns the most an unreturned document can score (the k-th partial sum plus what the terms'
    unread tails can add), which the nightly reach rules use as the pool's boundary."""

    def __init__(self, indptr, impact_indices, impact_data, n_docs: int, budget: int, min_per_term: int = 64):
        self.indptr, self.indices, self.data = indptr, impact_indices, impact_data
        self.n_docs, self.budget, self.min_per_term = int(n_docs), int(budget), max(1, int(min_per_term))

    def shares(self, weights: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """How many postings of each term are read: every posting when the lists hold at most `budget`; else the
        budget shared by squared weight (each term at least min_per_term, at most its list), what the lists
        shorter than their share leave given again to the others (twice)."""
        if int(lengths.sum()) <= self.budget:
            return lengths
        w2 = np.square(weights.astype(np.float64))
        read = np.zeros(len(lengths), dtype=np.int64)
        open_ = np.ones(len(lengths), dtype=bool)  # terms whose list is longer than what they read so far
        for _ in range(3):
            left = self.budget - int(read[~open_].sum())
            share = (w2 * (max(left, 0) / max(float(w2[open_].sum()), 1e-300))).astype(np.int64)
            read = np.where(open_, np.minimum(lengths, np.maximum(self.min_per_term, share)), read)
            full = open_ & (read >= lengths)
            if not full.any():
                break
            open_ &= ~full
        return read

    def top_k(self, terms: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(rows int64, partial scores float32, outsider bound), best first (ties: lower row)."""
        terms = np.asarray(terms, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float32)
        if not len(terms) or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0
        begins = np.asarray(self.indptr[terms], dtype=np.int64)
        lengths = np.asarray(self.indptr[terms + 1], dtype=np.int64) - begins
        read = self.shares(weights, lengths)
        kernel = ACTIVE["head_top"]
        if kernel is not None:  # the same sums and top-k in one compiled loop (store.compiledtopk)
            rows, best = head_top_k(kernel, self.indices, self.data, begins, read, weights, self.n_docs, k)
        else:
            rows, best = self._head_top_k(begins, read, weights, k)
        # what an unread posting can add: each truncated term's last value read (its list is sorted by value);
        # with the documents' rows of norm at most 1, also at most the truncated weights' norm (Cauchy-Schwarz)
        cut = read < lengths
        tails = np.asarray(self.data[begins[cut] + read[cut] - 1], np.float64)
        w = weights[cut].astype(np.float64)
        unread = min(float(np.dot(w, tails)), float(np.sqrt(np.dot(w, w)))) if len(w) else 0.0
        return rows, best, (float(best[-1]) if len(rows) >= k else 0.0) + (unread * (1 + MARGIN) + MARGIN
                                                                           if len(w) else 0.0)

    def _head_top_k(self, begins: np.ndarray, read: np.ndarray, weights: np.ndarray,
                    k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best documents by the sums of the postings read, in NumPy (`top_k`'s rows and partial scores)."""
        at = ranges(begins, read)
        docs = np.asarray(self.indices[at], dtype=np.int64)
        values = np.asarray(self.data[at], dtype=np.float32) * np.repeat(weights, read)
        if self.n_docs <= DENSE_SUMS * len(docs):  # a corpus not much larger than the read: an array of its size
            sums = np.bincount(docs, weights=values, minlength=self.n_docs)
            found = np.flatnonzero(sums)
            partial = sums[found]
        else:  # the same sums (each document's values added in the order read) over the documents read alone
            found, slot = distinct(docs, self.n_docs)
            partial = np.bincount(slot, weights=values, minlength=len(found))
        return _best(found, partial, k)
