"""The lexical index built from shards of the corpus: the same index as `LexicalIndex.build` (vocabulary, IDF,
TF-IDF matrix with its stored entry order, mentions, found names, document hashes), with the per-document work
(tokenising, counting, finding names, weighting) done shard by shard, where an engine runs it (Ray tasks in
the batch's Ray engine).

    index = build_sharded(ids, rows, map_shards=engine.map_shards, shards=8)

Two rounds over the shards, the driver merging between them:

1. `count_shard`: each shard tokenises its documents with the fit's analyzer (scikit-learn's, so its tokens,
   lowercase and stop words are the fit's), counts terms per document and the shard's document frequencies,
   finds the names each document mentions (and counts the texts each name is found in), and hashes the
   documents.
2. The driver adds the document frequencies up in shard order (which gives each term's first appearance in
   the corpus, the order scikit-learn's fit stores a row's entries in), keeps the terms within min_df/max_df as
   `fit_tfidf` does (with its fallback), and computes the IDF with scikit-learn's formula in float32.
3. `weigh_shard`: each shard maps its counts to the vocabulary, orders every row's entries as the fit does and
   weighs them with scikit-learn's TfidfTransformer (sublinear TF, IDF, l2 norm), so every float is the fit's.
   Each shard also makes its rows of the mention matrix, with the names' weights from the texts each name is
   found in, added up by the driver (`mention_matrix`'s, shard by shard).
4. The driver stacks the rows.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from .lexical import TOKEN_PATTERN, language_of, lexical_document, sparse
from .lexindex import LexicalIndex, document_hashes
from .mentionmatrix import found_arrays, mention_block, name_counts, name_owners, name_weights, names_in

Rows = Sequence[tuple[str, str, str]]  # (title, excerpt, body) in index order
MapShards = Callable[[Callable, Sequence, object], list]  # (fn, parts, common) -> [fn(common, part) for part]


def map_here(fn: Callable, parts: Sequence, common=None) -> list:
    """The shards one after the other in this process."""
    return [fn(common, part) for part in parts]


@lru_cache(maxsize=4)
def _analyzer(language: str | None = None):
    """The analyzer `fit_tfidf`'s vectorizer tokenises with (preprocess, tokens, the language's stop words)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(stop_words=language_of(language).stop_words, token_pattern=TOKEN_PATTERN).build_analyzer()


def count_shard(common: tuple[frozenset[str], str | None], rows: Rows) -> dict:
    """One shard's term counts (rows x the shard's terms, in order of first appearance in the shard), its
    document frequencies, the names each document mentions and the documents' hashes. common: (the names of
    every article, the language)."""
    names, language = common
    analyze = _analyzer(language)
    documents = [lexical_document(title, body or excerpt, language) for title, excerpt, body in rows]
    column: dict[str, int] = {}
    indptr, indices, data = [0], [], []
    for document in documents:
        tally: dict[int, int] = {}
        for term in analyze(document):
            j = column.setdefault(term, len(column))
            tally[j] = tally.get(j, 0) + 1
        indices.extend(tally)
        data.extend(tally.values())
        indptr.append(len(indices))
    indices_arr = np.array(indices, dtype=np.int64)
    found = [names_in(document, names) for document in documents]
    return {"terms": list(column), "df": np.bincount(indices_arr, minlength=len(column)).astype(np.int64),
            "indptr": np.array(indptr, dtype=np.int64), "indices": indices_arr,
            "counts": np.array(data, dtype=np.float32), "found": found, "names": name_counts(found),
            "hashes": document_hashes(documents)}


def choose_vocabulary(df: dict[str, int], n_docs: int) -> list[str] | None:
    """The terms `fit_tfidf` keeps (sorted), from every term's document frequency: min_df=2 and max_df=0.5 of
    the documents (1 and all of them for two documents or fewer), then without bounds if none remain; None when
    no document has a term (scikit-learn's "empty vocabulary")."""
    if not df:
        return None
    bounds = [(2, 0.5), (1, 1.0)] if n_docs > 2 else [(1, 1.0)]
    for min_df, max_df in bounds:
        high, low = max_df * n_docs, min_df  # as scikit-learn's CountVectorizer.fit_transform / _limit_features
        if high < low:
            continue
        kept = sorted(term for term, count in df.items() if low <= count <= high)
        if kept:
            return kept
    return None


def idf_weights(df: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smooth IDF (TfidfTransformer.fit), in float32 as the fit's vectorizer computes it."""
    weights = df.astype(np.float32) + np.float32(1.0)
    idf = np.full_like(weights, fill_value=n_docs + 1, dtype=np.float32)
    idf /= weights
    np.log(idf, out=idf)
    idf += 1.0
    return idf


def weigh_shard(common: dict, part: dict) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """One shard's TF-IDF rows: its counts in vocabulary columns, each row's entries in order of the terms'
    first appearance in the corpus (as the fit stores them), weighted by scikit-learn's transformer; and its
    rows of the mention matrix."""
    from sklearn.feature_extraction.text import TfidfTransformer

    mentions = mention_block(common["owners"], part["found"], common["weights"], part["first"], common["n"])

    column, idf = part["column"], common["idf"]  # column: the shard's term -> vocabulary column, or -1
    rank = common["rank"]  # vocabulary column -> the term's first appearance in the corpus
    rows = np.repeat(np.arange(len(part["indptr"]) - 1), np.diff(part["indptr"]))
    cols = column[part["indices"]]
    keep = cols >= 0
    rows, cols, counts = rows[keep], cols[keep], part["counts"][keep]
    order = np.lexsort((rank[cols], rows))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=len(part["indptr"]) - 1))))
    matrix = sparse.csr_matrix((counts[order], cols[order].astype(np.int32), indptr.astype(np.int32)),
                               shape=(len(part["indptr"]) - 1, len(idf)))
    transformer = TfidfTransformer(sublinear_tf=True)
    transformer.idf_ = idf
    return transformer.transform(matrix, copy=False).tocsr(), mentions


MIN_SHARD_ROWS = 1000  # a shard smaller than this is not worth a task
MAX_SHARD_ROWS = 50_000  # nor larger than this, whatever the workers (its documents travel to one of them)


def shard_count(rows: int, workers: int) -> int:
    """Shards for `rows` documents on `workers` CPUs: two per CPU, within MIN/MAX_SHARD_ROWS documents each."""
    return max(1, min(math.ceil(rows / MIN_SHARD_ROWS), max(2 * workers, math.ceil(rows / MAX_SHARD_ROWS))))


def split_rows(count: int, shards: int) -> list[tuple[int, int]]:
    """(start, stop) of `shards` nearly equal spans of range(count) (fewer when there are fewer rows)."""
    shards = max(1, min(shards, count))
    size = math.ceil(count / shards) if count else 0
    return [(start, min(start + size, count)) for start in range(0, count, size)] if count else []


def build_sharded(ids: Sequence[str], rows: Rows, map_shards: MapShards = map_here, shards: int = 1,
                  language: str | None = None) -> LexicalIndex:
    """`LexicalIndex.build(ids, rows, language)`, with the per-document work done over `shards` shards by
    `map_shards`."""
    n = len(rows)
    owners = name_owners(ids, [r[0] for r in rows])
    spans = split_rows(n, shards)
    counted = map_shards(count_shard, [list(rows[a:b]) for a, b in spans], (frozenset(owners), language))
    df: dict[str, int] = {}  # insertion order: each term's first appearance in the corpus
    for part in counted:
        for term, count in zip(part["terms"], part["df"].tolist()):
            df[term] = df.get(term, 0) + count
    vocabulary = choose_vocabulary(df, n)
    if vocabulary is None:  # as LexicalIndex.build for documents without a word
        return LexicalIndex(sparse.csr_matrix((n, 0), dtype=np.float32), [], np.zeros(0),
                            sparse.csr_matrix((n, n), dtype=np.float32), language=language)
    where = {term: j for j, term in enumerate(vocabulary)}
    first = {term: r for r, term in enumerate(df)}
    rank = np.array([first[term] for term in vocabulary], dtype=np.int64)
    idf = idf_weights(np.array([df[term] for term in vocabulary], dtype=np.int64), n)
    found = [names for part in counted for names in part["found"]]
    names = {}  # how many texts each name is found in, added up in row order
    for part in counted:
        for name, count in part["names"].items():
            names[name] = names.get(name, 0) + count
    weights = name_weights(names, n)
    parts = [{key: part[key] for key in ("indptr", "indices", "counts", "found")}
             | {"column": np.array([where.get(term, -1) for term in part["terms"]], dtype=np.int64), "first": a}
             for part, (a, _) in zip(counted, spans)]
    weighed = map_shards(weigh_shard, parts, {"idf": idf, "rank": rank, "owners": owners, "weights": weights, "n": n})
    if weighed:
        tfidf = sparse.vstack([rows for rows, _ in weighed], format="csr")
        mentions = sparse.vstack([rows for _, rows in weighed], format="csr")
    else:
        tfidf = sparse.csr_matrix((0, len(vocabulary)), dtype=np.float32)
        mentions = sparse.csr_matrix((0, 0), dtype=np.float32)
    hashes = np.concatenate([part["hashes"] for part in counted]) if counted else document_hashes([])
    return LexicalIndex(tfidf, vocabulary, idf, mentions, hashes, weights, found_arrays(owners, found), language)
