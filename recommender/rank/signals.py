"""Signals of a (query, candidate) pair, all from stored data (no model): what the learned ranking weighs.

    facts = ArticleFeatures.from_store(index.store)
    X = pair_signals(cand, facts)          # one row per candidate, columns SIGNALS

Signals:

* ``dense_z``, ``lexical_z``, ``mention_z``: the hybrid ranker's per-query z-scores (see `ranking.py`)
* ``title_overlap``: Jaccard overlap of the two titles' words (three letters or more)
* ``tag_overlap``: shared tags/topics, each weighted by its rarity (IDF: log(n / articles with the tag))
* ``same_author``: 1 when the two share an author
* ``date_gap``: log(1 + days between the two publication dates); ``dates_known`` says both have one, and
  ``candidate_older`` that the candidate was published first
* ``same_source``: 1 when both come from one source (publisher, or file of origin)
* ``path_proximity``: share of URL-path (or id) segments the two have in common from the start; ``path_parent``:
  one is the other's parent or child
* ``same_page_type``: 1 when both have the same page type
* ``window_z``: the hybrid ranker's window-level z-score (see `windows.py`; 0 for an index without windows);
  ``window_max_z``: the z-score of the pair's best single window match (max-sim), over the query's row
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

from ..common.blocks import spans
from ..store.compiledscores import row_dots
from ..store.compiledtopk import ACTIVE
from .allpairs import SourceDays

_WORD = re.compile(r"[^\W\d_][\w'-]{2,}", re.U)


def title_words(title: str) -> frozenset[str]:
    return frozenset(w.lower().replace("'", "") for w in _WORD.findall(title or ""))


def path_segments(url: str | None, article_id: str) -> tuple[str, ...]:
    """The URL's path segments (else the id's), lower-cased, without an index/extension tail."""
    path = urlsplit(url).path if url and "://" in url else article_id
    parts = [p for p in path.lower().split("/") if p]
    if parts and re.fullmatch(r"index\.\w+", parts[-1]):
        parts.pop()
    if parts and "." in parts[-1]:
        parts[-1] = parts[-1].rsplit(".", 1)[0]
    return tuple(parts)


MAX_DEPTH = 8  # URL-path levels compared


def _binary_matrix(sets: Sequence[frozenset[str]]):
    """Rows of term sets as a sparse 0/1 matrix, and the vocabulary (numbered in order of first sight, each row's
    terms in sorted order: the same matrix in every process, whatever its string hashing)."""
    from scipy.sparse import csr_matrix

    vocab: dict[str, int] = {}
    indptr, indices = [0], []
    for terms in sets:
        indices.extend(vocab.setdefault(t, len(vocab)) for t in sorted(terms))
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    return csr_matrix((data, indices, indptr), shape=(len(sets), max(1, len(vocab)))), vocab


def _prefix_hash(parts: tuple[str, ...]) -> int:
    """A URL-path prefix as a non-negative 63-bit number, the same in every process (Python's `hash` of strings
    is salted per process, which made the stored index files differ from build to build)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFFFFFFFFFF


@dataclass
class ArticleFeatures:
    """Each article's features the pair signals read, in row order (built once per index, from the metadata
    store): sparse 0/1 matrices of title words, tags and authors, tag IDF, day numbers, source and page-type
    codes, and the hashes of each URL-path prefix."""

    titles: object  # csr (n x title words)
    title_len: np.ndarray
    tags: object  # csr (n x tags)
    tag_idf: np.ndarray
    authors: object  # csr (n x authors)
    days: np.ndarray
    sources: np.ndarray
    path_prefix: np.ndarray  # (n x MAX_DEPTH) hash of the first i+1 segments; a unique negative value past the end
    path_len: np.ndarray
    page_types: np.ndarray  # int code, -1 none

    def tag_postings(self) -> tuple:
        """The tag matrix as (data, indices, indptr, tag counts, owner row of each entry, entries in tag order,
        each tag's start in that order): what `tag_pool` walks. Derived once per ArticleFeatures, not per block."""
        cached = self.__dict__.get("_tag_postings")
        if cached is None:
            data, indices = np.asarray(self.tags.data), np.asarray(self.tags.indices)
            indptr = np.asarray(self.tags.indptr)
            df = np.bincount(indices, minlength=self.tags.shape[1])
            owner = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
            order = np.argsort(indices, kind="stable")  # postings: the articles of each tag, in row order
            starts = np.concatenate([[0], np.cumsum(df)])
            cached = self.__dict__["_tag_postings"] = (data, indices, indptr, df, owner, order, starts)
        return cached

    @classmethod
    def from_infos(cls, infos: Sequence) -> "ArticleFeatures":
        n = len(infos)
        titles, _ = _binary_matrix([title_words(i.title) for i in infos])
        tags, _ = _binary_matrix([frozenset(t.lower() for t in getattr(i, "topics", ()) or ()) for i in infos])
        df = np.asarray(tags.sum(axis=0)).ravel()
        authors, _ = _binary_matrix([frozenset(a.lower() for a in getattr(i, "authors", ()) or ())
                                     for i in infos])
        basic = SourceDays.from_lists([i.source for i in infos], [i.published for i in infos])
        codes: dict[str, int] = {}
        page_types = np.array([codes.setdefault(i.page_type, len(codes)) if getattr(i, "page_type", None) else -1
                               for i in infos], dtype=np.int64)
        prefix = -(np.arange(n, dtype=np.int64)[:, None] + 1) * np.ones((1, MAX_DEPTH), dtype=np.int64)
        lengths = np.zeros(n, dtype=np.int64)
        for row, i in enumerate(infos):
            parts = path_segments(i.url, i.id)
            lengths[row] = len(parts)
            for level in range(min(len(parts), MAX_DEPTH)):
                prefix[row, level] = _prefix_hash(parts[:level + 1])
        return cls(titles=titles, title_len=np.asarray(titles.sum(axis=1)).ravel(), tags=tags,
                   tag_idf=np.where(df > 0, np.log(n / np.maximum(df, 1)), 0.0).astype(np.float32),
                   authors=authors, days=basic.days, sources=basic.sources, path_prefix=prefix,
                   path_len=lengths, page_types=page_types)


# --- each site signal of a (query, candidates) pair: `name(facts, query, rows)` for one query's candidates (the
# query a row, the rows its candidates), `name_pairs(facts, qs, cs)` pair by pair (the nightly reach, float64);
# recommender.rank.signaltable names them. A function written for arrays can serve both (query broadcast).


def title_overlap(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    if not facts.title_len[query]:
        return np.zeros(len(rows), np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    return title_overlap_block(facts, np.full(len(rows), query, dtype=np.int64), rows, np.array([0, len(rows)]))


def _shared_words(matrix, query: int, rows: np.ndarray, dense: np.ndarray | None = None) -> np.ndarray:
    """Each row's product with the query's row of a sparse 0/1 matrix (the words they share), float32: in the
    compiled loop where the process has it (store.compiledscores._row_dots: whole numbers, the same in any order),
    else a sparse product. dense: a float32 buffer of the matrix's width, all 0, to use (left all 0)."""
    kernel = ACTIVE["row_dots"]
    data = getattr(matrix, "data", None)
    if kernel is None or data is None or np.asarray(data).dtype != np.float32:
        return np.asarray((matrix[rows] @ matrix[query].T).todense()).ravel()
    csr = np.asarray(matrix.indptr), np.asarray(matrix.indices), np.asarray(data)
    dense = np.zeros(matrix.shape[1], np.float32) if dense is None else dense
    a, b = int(csr[0][query]), int(csr[0][query + 1])
    dense[csr[1][a:b]] = csr[2][a:b]
    out = row_dots(kernel, csr, rows, dense)
    dense[csr[1][a:b]] = 0.0
    return out


# --- the block forms: `name_block(facts, qs, cs, starts)`, a block of queries' candidates (the pairs qs[i], cs[i];
# query k's pairs starts[k]:starts[k + 1]), the column form's values bit for bit, query by query (what the batch
# computes: signaltable.block_signals). A signal whose `pairs` form gives the column's values needs none.


def title_overlap_block(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    shared = np.zeros(len(cs), np.float32)
    dense = np.zeros(facts.titles.shape[1], np.float32)  # one buffer for the block's queries
    for q, a, b in spans(qs, starts):
        if facts.title_len[q]:
            shared[a:b] = _shared_words(facts.titles, q, cs[a:b], dense)
    query_len = facts.title_len[qs]
    union = facts.title_len[cs] + query_len - shared
    return np.where((query_len > 0) & (union > 0), shared / np.maximum(union, 1), 0.0)


def _queries_with(matrix, column, facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray,
                  starts: np.ndarray) -> np.ndarray:
    """`column` of the queries that have an entry in `matrix` (the others' values are 0)."""
    out = np.zeros(len(cs), np.float32)
    indptr = np.asarray(matrix.indptr)
    for q, a, b in spans(qs, starts):
        if indptr[q + 1] > indptr[q]:
            out[a:b] = column(facts, q, cs[a:b])
    return out


def tag_overlap_block(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return _queries_with(facts.tags, tag_overlap, facts, qs, cs, starts)


def same_author_block(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return _queries_with(facts.authors, same_author, facts, qs, cs, starts)


def tag_overlap(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    if not facts.tags[query].nnz:
        return np.zeros(len(rows), np.float32)
    weighted = facts.tags[query].multiply(facts.tag_idf[None, :])
    return np.asarray((facts.tags[rows] @ weighted.T).todense()).ravel()


def same_author(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    if not facts.authors[query].nnz:
        return np.zeros(len(rows), np.float32)
    return np.asarray((facts.authors[rows] @ facts.authors[query].T).todense()).ravel() > 0


def _days(facts: ArticleFeatures, query: int, rows: np.ndarray) -> tuple:
    """(both dated, the candidates' days with 0 for none, the query's day, 0 for none)."""
    qday = facts.days[query]
    cdays = facts.days[rows]
    known = ~np.isnan(cdays) & (not math.isnan(qday))
    return known, np.nan_to_num(cdays), (0.0 if math.isnan(qday) else qday)


def date_gap(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    known, cdays, qday = _days(facts, query, rows)
    return np.log1p(np.where(known, np.abs(cdays - qday), 0.0))


def dates_known(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    return _days(facts, query, rows)[0]


def candidate_older(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    known, cdays, qday = _days(facts, query, rows)
    return known & (cdays < qday)


def same_source(facts: ArticleFeatures, qs, cs: np.ndarray) -> np.ndarray:
    """(both forms: qs a query row or one per pair)"""
    return (facts.sources[cs] == facts.sources[qs]) & (facts.sources[qs] >= 0)


_LAST_PATHS = threading.local()  # each thread's last _common_path: path_proximity and path_parent read the same


def _common_path(facts: ArticleFeatures, qs, cs: np.ndarray) -> tuple:
    """(the query's path length, the candidates', their common leading segments). The thread's last answer is
    kept for the same facts, queries and candidates (both path signals of a list ask for the same)."""
    last = getattr(_LAST_PATHS, "value", None)
    if last is not None and last[0] is facts and np.array_equal(last[1], cs) and np.array_equal(last[2], qs):
        return last[3]
    qlen, clen = facts.path_len[qs], facts.path_len[cs]
    found = qlen, clen, np.cumprod(facts.path_prefix[cs] == facts.path_prefix[qs], axis=1).sum(axis=1)
    _LAST_PATHS.value = (facts, np.array(cs), np.array(qs), found)
    return found


def path_proximity(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    qlen, clen, common = _common_path(facts, query, rows)
    if not qlen:
        return np.zeros(len(rows), np.float32)
    return np.where(clen > 0, common / np.maximum(np.maximum(clen, qlen), 1), 0.0)


def path_parent(facts: ArticleFeatures, query: int, rows: np.ndarray) -> np.ndarray:
    qlen, clen, common = _common_path(facts, query, rows)
    if not qlen:
        return np.zeros(len(rows), np.float32)
    return (clen > 0) & (common == np.minimum(clen, qlen)) & (np.abs(clen - qlen) == 1)


def same_page_type(facts: ArticleFeatures, qs, cs: np.ndarray) -> np.ndarray:
    """(both forms)"""
    return (facts.page_types[cs] == facts.page_types[qs]) & (facts.page_types[qs] >= 0)


def _shared(matrix, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    matrix = matrix.tocsr()  # mappedarrays.MappedCSR (a query's mapped arrays) as SciPy's; SciPy's own as it is
    return np.asarray(matrix[qs].multiply(matrix[cs]).sum(axis=1), dtype=np.float64).ravel()


def title_overlap_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    tl_q, tl_c = facts.title_len[qs], facts.title_len[cs]
    common_titles = _shared(facts.titles, qs, cs)
    union = tl_q + tl_c - common_titles
    return np.where((tl_q > 0) & (union > 0), common_titles / np.maximum(union, 1), 0.0)


def tag_overlap_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    tag_matrix = facts.tags.tocsr()
    return np.asarray(tag_matrix[qs].multiply(tag_matrix[cs]) @ np.asarray(facts.tag_idf, np.float64)).ravel()


def same_author_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return (_shared(facts.authors, qs, cs) > 0).astype(np.float64)


def _days_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> tuple:
    qday, cday = facts.days[qs], facts.days[cs]
    return ~np.isnan(cday) & ~np.isnan(qday), np.nan_to_num(cday), np.nan_to_num(qday)


def date_gap_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    known, cday, qday = _days_pairs(facts, qs, cs)
    return np.log1p(np.where(known, np.abs(cday - qday), 0.0))


def dates_known_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _days_pairs(facts, qs, cs)[0]


def candidate_older_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    known, cday, qday = _days_pairs(facts, qs, cs)
    return known & (cday < qday)


def path_proximity_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    qlen, clen, common = _common_path(facts, qs, cs)
    return np.where((qlen > 0) & (clen > 0), common / np.maximum(np.maximum(clen, qlen), 1), 0.0)


def path_parent_pairs(facts: ArticleFeatures, qs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    qlen, clen, common = _common_path(facts, qs, cs)
    return (qlen > 0) & (clen > 0) & (common == np.minimum(clen, qlen)) & (np.abs(clen - qlen) == 1)


def tag_pool(facts: ArticleFeatures, rows: np.ndarray, depth: int) -> list[np.ndarray]:
    """The shared-tag candidate pool of each query row: up to `depth` articles sharing a rare tag with it (one
    held by at most `depth` articles), the most IDF-weighted shared tags first (ties by lower row); the query
    itself is left in (the ranker drops it). NumPy only, on the CSR arrays (SciPy's or the memory-mapped ones a
    query by id reads), so the batch and a cold query compute the same numbers the same way."""
    rows = np.asarray(rows, dtype=np.int64)
    data, indices, indptr, df, owner, order, starts = facts.tag_postings()
    rare = (df > 0) & (df <= depth)
    if not rare.any():
        return [np.zeros(0, dtype=np.int64) for _ in rows]
    idf = np.asarray(facts.tag_idf, dtype=np.float64)
    out = []
    for r in rows:
        weights: dict[int, float] = {}
        for j in range(indptr[r], indptr[r + 1]):
            t = int(indices[j])
            if not rare[t]:
                continue
            entries = order[starts[t]:starts[t + 1]]
            w = idf[t] * float(data[j]) * data[entries].astype(np.float64)
            for c, v in zip(owner[entries].tolist(), w.tolist()):
                weights[c] = weights.get(c, 0.0) + v
        if not weights:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        cols = np.fromiter(weights.keys(), dtype=np.int64, count=len(weights))
        weight = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
        keep = np.lexsort((cols, -weight))[:depth + 1]  # one more: the query shares its own tags
        out.append(cols[keep])
    return out
