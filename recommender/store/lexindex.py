"""The lexical half of the hybrid ranking, persisted beside the vector index (no pickle anywhere):

* a TF-IDF matrix (the published configuration of `lexical.py`), its vocabulary and IDF weights, so that a
  query by id reads stored rows and a query by text is transformed exactly as the corpus was;
* a mention matrix: M[a, b] > 0 when article a's text names article b (b's title, the part of the title
  before a " — " separator, or the last segment of b's id), weighted by how rare that name is (IDF).
  Editors link to the pages of the things a text names; this is that signal.

Both are made again with the index whenever the corpus changes: a full fit, or (recommender.batch.build,
LEXICAL_DRIFT) an update that keeps the vocabulary, the IDF and the names' mention weights of the last fit and
transforms only new and changed rows. The names found in each text are stored too, so an update scans only new
and changed texts for names and searches the others for new names only; the mention matrix it makes equals a
full scan's, with the frozen weights. The files are versioned and named in the manifest like the vectors, so
they are checksummed and swapped atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from array import array
from typing import Iterable, Sequence

import numpy as np

from .lexical import (DEFAULT_LANGUAGE, TOKEN_PATTERN, fit_tfidf, language_of, lexical_document, prepare_text,
                      sparse)  # SciPy on first use
from .mentionmatrix import (MENTION_TEXT_LIMIT, found_matrix, mentions_of, name_owners, name_weights, names_in,
                            occurs)

NEW_NAMES_SEARCHED = 64  # an update searches unchanged texts for up to this many new names, else scans them all
SUBLINEAR = True


def scan_names(documents: Iterable[str], owners: dict[str, list[int]],
               hashes: np.ndarray | None = None) -> tuple[tuple[list[str], sparse.csr_matrix], dict[str, int]]:
    """found_arrays(owners, [names_in(d, owners) for d in documents]) and name_counts of the same, one text at a
    time (no set per text is kept: at 1M articles those sets alone would take tens of GB). hashes: an
    n x 20 array filled with document_hashes on the way."""
    names = sorted(owners)
    column = {name: j for j, name in enumerate(names)}
    indptr, indices = [0], array("i")
    df: dict[str, int] = {}
    for row, document in enumerate(documents):
        seen = names_in(document, owners)
        for gram in seen:  # the order name_counts adds them in: the name weights' stored order
            df[gram] = df.get(gram, 0) + 1
        indices.extend(sorted(column[name] for name in seen))
        indptr.append(len(indices))
        if hashes is not None:
            hashes[row] = np.frombuffer(document_hash(document), dtype=np.uint8)
    # a view of the array's buffer, not a copy (at 1M articles the found names are GBs; the array is not grown
    # again, and the view keeps it alive)
    found = np.frombuffer(indices, dtype=np.int32) if len(indices) else np.zeros(0, dtype=np.int32)
    return (names, found_matrix(found, np.array(indptr, dtype=np.int64), len(names))), df


def document_hashes(documents: Sequence[str]) -> np.ndarray:
    """n x 20 bytes (sha1 of each lexical document): which rows an incremental update may keep."""
    out = np.zeros((len(documents), 20), dtype=np.uint8)
    for i, doc in enumerate(documents):
        out[i] = np.frombuffer(document_hash(doc), dtype=np.uint8)
    return out


def document_hash(document: str) -> bytes:
    import hashlib

    return hashlib.sha1(document.encode("utf-8", "surrogatepass")).digest()


class Documents:
    """The lexical documents of (title, excerpt, body) rows, made when read: a build passes over them twice
    (the fit, then names and hashes) without holding a copy of every text."""

    def __init__(self, rows: Sequence[tuple[str, str, str]], language: str | None = None):
        self.rows, self.language = rows, language

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        title, excerpt, body = self.rows[i]
        return lexical_document(title, body or excerpt, self.language)

    def __iter__(self):
        for title, excerpt, body in self.rows:
            yield lexical_document(title, body or excerpt, self.language)


class LexicalIndex:
    """TF-IDF rows and mentions of every article in index row order."""

    def __init__(self, tfidf: sparse.csr_matrix, vocabulary: list[str], idf: np.ndarray,
                 mentions: sparse.csr_matrix, doc_hashes: np.ndarray | None = None,
                 name_weights: dict[str, float] | None = None,
                 found: tuple[list[str], sparse.csr_matrix] | None = None, language: str | None = None):
        self.tfidf = _float32_csr(tfidf)  # no copy when it is one already
        language_of(language)  # an unknown language is refused
        self.language = language or DEFAULT_LANGUAGE  # its texts' language (lexical.LANGUAGES)
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float32)
        self.mentions = _float32_csr(mentions)
        self.doc_hashes = doc_hashes
        self.name_weights = name_weights  # mention weight of each name, frozen with the IDF
        self.found = found  # (names, rows x names): the names found in each row's text, which an update reuses
        self._tfidf_t = None
        self._mentions_t = None
        self._terms = None
        self._arrays = None  # csr_arrays()

    @property
    def count(self) -> int:
        return self.tfidf.shape[0]

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def build(cls, ids: Sequence[str], rows: Sequence[tuple[str, str, str]],
              language: str | None = None) -> "LexicalIndex":
        """From (title, excerpt, body) rows in index order, in a language of lexical.LANGUAGES (None: English)."""
        documents = Documents(rows, language)
        try:
            vectorizer, matrix = fit_tfidf(documents, language)
        except ValueError:  # no words at all
            return cls(sparse.csr_matrix((len(documents), 0), dtype=np.float32), [], np.zeros(0),
                       sparse.csr_matrix((len(documents), len(documents)), dtype=np.float32), language=language)
        vocabulary = [str(t) for t in vectorizer.get_feature_names_out()]
        idf = vectorizer.idf_
        del vectorizer  # its stop words of the fit (every word cut by min_df/max_df)
        owners = name_owners(ids, [r[0] for r in rows])
        hashes = np.zeros((len(documents), 20), dtype=np.uint8)
        found, df = scan_names(documents, owners, hashes)
        weights = name_weights(df, len(documents))
        return cls(matrix, vocabulary, idf, mentions_of(owners, found, weights, 0, len(documents)), hashes,
                   dict(weights), found, language)

    def updated(self, previous_ids: Sequence[str], ids: Sequence[str], rows: Sequence[tuple[str, str, str]],
                previous_titles: Sequence[str] | None = None) -> tuple["LexicalIndex", int]:
        """A new index for the corpus `ids`/`rows` with this index's vocabulary and IDF frozen (no refit):
        rows whose document is unchanged are copied, new and changed documents are transformed with the frozen
        weights, and the mention matrix is recomputed: unchanged documents keep the names found in them last
        time, and are searched only for names that are new (new or renamed articles); new and changed documents
        are searched in full. With the previous titles, the mention rows that cannot have changed are copied
        (store.mentionreuse). Returns (index, rows transformed). Words that are not in the frozen vocabulary
        count for nothing until the next full build."""
        documents = [lexical_document(title, body or excerpt, self.language) for title, excerpt, body in rows]
        hashes = document_hashes(documents)
        old_row = {article_id: r for r, article_id in enumerate(previous_ids)}
        keep_src, keep_dst, fresh = [], [], []
        for r, article_id in enumerate(ids):
            p = old_row.get(article_id)
            if p is not None and self.doc_hashes is not None and np.array_equal(self.doc_hashes[p], hashes[r]):
                keep_src.append(p)
                keep_dst.append(r)
            else:
                fresh.append(r)
        parts = [self.tfidf[np.array(keep_src, dtype=np.int64)]]
        if fresh:
            parts.append(self.transform_many([documents[r] for r in fresh]))
        stacked = sparse.vstack(parts).tocsr()
        order = np.argsort(np.array(keep_dst + fresh, dtype=np.int64), kind="stable")
        tfidf = stacked[order]
        titles = [r[0] for r in rows]
        owners = name_owners(ids, titles)
        kept = dict(zip(keep_dst, keep_src))
        found, df = self._found_again(owners, documents, kept)
        weights = name_weights(df, len(documents), self.name_weights)
        mentions = None
        if previous_titles is not None and self.found is not None:
            from .mentionreuse import reused_mentions

            mentions = reused_mentions(self.mentions, self.found, previous_ids, previous_titles, self.name_weights,
                                       ids, titles, owners, found, weights, kept)
        if mentions is None:
            mentions = mentions_of(owners, found, weights, 0, len(documents))
        weights = {**(self.name_weights or {}), **weights}
        return LexicalIndex(tfidf, self.vocabulary, self.idf, mentions, hashes, weights, found, self.language), len(fresh)

    def _found_again(self, owners: dict[str, list[int]], documents: Sequence[str],
                     kept: dict[int, int]) -> tuple[tuple[list[str], sparse.csr_matrix], dict[str, int]]:
        """The names found in each document as scan_names gives them (found arrays, and how many texts each name
        is found in): for a document unchanged since this index (kept: its new row -> old row), the names found
        in it then that still name an article (its stored row, its columns renumbered in one array step), plus
        any new name it contains; other documents (and all, when this index has no record of its names or too
        many names are new) searched in full."""
        new_names = set(owners) - set(self.found[0]) if self.found is not None else set(owners)
        if self.found is None or len(new_names) > NEW_NAMES_SEARCHED:
            return scan_names(documents, owners)
        old_names, old_found = self.found
        names = sorted(owners)
        column = {name: j for j, name in enumerate(names)}
        renumber = np.fromiter((column.get(name, -1) for name in old_names), dtype=np.int64, count=len(old_names))
        added = sorted(column[name] for name in new_names)  # new names' columns, searched in kept texts
        old_ptr, old_cols = np.asarray(old_found.indptr, np.int64), np.asarray(old_found.indices, np.int64)
        indptr, parts = [0], []
        for r, document in enumerate(documents):
            p = kept.get(r)
            if p is None:
                mine = np.array(sorted(column[name] for name in names_in(document, owners)), dtype=np.int64)
            else:
                mine = renumber[old_cols[old_ptr[p]:old_ptr[p + 1]]]
                mine = mine[mine >= 0]  # names that no longer name an article; the renumbering keeps the order
                if added:
                    lowered = document[:MENTION_TEXT_LIMIT].lower()
                    more = [j for j in added if occurs(names[j], lowered)]
                    if more:
                        mine = np.sort(np.concatenate([mine, np.array(more, dtype=np.int64)]))
            parts.append(mine)
            indptr.append(indptr[-1] + len(mine))
        columns = np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)
        matrix = found_matrix(columns, np.array(indptr, dtype=np.int64), len(names))
        counts = np.bincount(columns, minlength=len(names))
        df = {names[j]: int(counts[j]) for j in np.flatnonzero(counts)}
        return (names, matrix), df

    # --- storage ----------------------------------------------------------------------------------------

    def save(self, matrices: Path, lexicon: Path) -> None:
        """Two files: the sparse matrices as plain arrays (.npz, no objects) and the vocabulary (.json)."""
        with open(matrices, "wb") as handle:
            extra = {"doc_hashes": self.doc_hashes} if self.doc_hashes is not None else {}
            if self.found is not None:  # the names as UTF-8 JSON bytes: plain arrays, no objects
                extra.update(_csr_arrays("found", self.found[1]),
                             found_names=np.frombuffer(json.dumps(self.found[0]).encode("utf-8"), dtype=np.uint8))
            np.savez(handle, **_csr_arrays("tfidf", self.tfidf), **_csr_arrays("mentions", self.mentions),
                     idf=self.idf, **extra)
        lexicon.write_text(json.dumps({"vocabulary": self.vocabulary, "sublinear_tf": SUBLINEAR,
                                       "token_pattern": TOKEN_PATTERN, "name_weights": self.name_weights,
                                       "language": self.language}),
                           encoding="utf-8")

    def map_mentions(self, matrices: Path) -> None:
        """M read from the file `save` wrote, memory-mapped, instead of held (at 1M articles M is GBs): what the
        build reads of it after saving (the query data, the learned arrays) pages in from the file."""
        from .npyfiles import mapped_npz

        arrays = mapped_npz(matrices, [f"mentions_{part}" for part in ("data", "indices", "indptr", "shape")])
        shape = tuple(int(x) for x in arrays["mentions_shape"])
        self.mentions = sparse.csr_matrix((arrays["mentions_data"], arrays["mentions_indices"],
                                           arrays["mentions_indptr"]), shape=shape, copy=False)
        self._mentions_t = self._arrays = None

    @classmethod
    def load(cls, matrices: Path, lexicon: Path, *, found: bool = False, mapped: bool = False) -> "LexicalIndex":
        """found: also read the names found in each text (only an update needs them; queries do not); mapped: the
        TF-IDF and mention matrices memory-mapped from the file (read-only), not read into memory (at 1M articles
        M is GBs)."""
        with np.load(matrices, allow_pickle=False) as data:
            if mapped:
                from .npyfiles import mapped_npz

                arrays = mapped_npz(matrices, [f"{m}_{p}" for m in ("tfidf", "mentions")
                                               for p in ("data", "indices", "indptr")])
                tfidf = _csr_from({**arrays, "tfidf_shape": data["tfidf_shape"]}, "tfidf")
                mentions = _csr_from({**arrays, "mentions_shape": data["mentions_shape"]}, "mentions")
            else:
                tfidf = _csr_from(data, "tfidf")
                mentions = _csr_from(data, "mentions")
            idf = data["idf"]
            doc_hashes = data["doc_hashes"] if "doc_hashes" in data.files else None
            names = None
            if found and "found_names" in data.files:
                names = (json.loads(data["found_names"].tobytes().decode("utf-8")), _csr_from(data, "found"))
                if names[1].shape != (tfidf.shape[0], len(names[0])):
                    raise ValueError(f"{matrices}: the found names do not match the matrices")
        words = json.loads(lexicon.read_text(encoding="utf-8"))
        vocabulary = words["vocabulary"]
        if tfidf.shape[1] != len(vocabulary) or len(idf) != len(vocabulary):
            raise ValueError(f"{lexicon}: vocabulary does not match the TF-IDF matrix")
        return cls(tfidf, vocabulary, idf, mentions, doc_hashes, words.get("name_weights"), names,
                   words.get("language"))

    # --- scores -----------------------------------------------------------------------------------------

    def tfidf_rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x n) TF-IDF cosines of stored articles to every article."""
        if self._tfidf_t is None:
            self._tfidf_t = self.tfidf.T.tocsc()
        return (self.tfidf[np.asarray(rows)] @ self._tfidf_t).toarray()

    def mention_rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x n) mention weights in both directions (a names b, or b names a)."""
        if self._mentions_t is None:
            self._mentions_t = self.mentions.T.tocsr()
        rows = np.asarray(rows)
        return (self.mentions[rows] + self._mentions_t[rows]).toarray()

    def csr_arrays(self) -> dict:
        """The arrays the two-stage ranking reads (recommender.rank.candidates): TF-IDF rows and their postings
        (terms x documents), each as (indptr, indices, data), and the mentions in both directions (BothWays); made
        once."""
        if self._arrays is None:
            self._arrays = {"tfidf": (self.tfidf.indptr, self.tfidf.indices, self.tfidf.data),
                            "postings": self.postings_arrays(), "mentions": self.mention_arrays()}
        return self._arrays

    def use_arrays(self, arrays: dict) -> None:
        """csr_arrays given instead of made: an index's stored query arrays (mapped), the same arrays."""
        self._arrays = arrays

    def postings_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """csr_arrays' postings (the TF-IDF matrix by term, sorted), made on each call and not kept."""
        postings = self.tfidf.T.tocsr()
        postings.sort_indices()
        return postings.indptr, postings.indices, postings.data

    def mention_arrays(self):
        """csr_arrays' mentions in both directions (store.bothways.BothWays over M and Mᵀ: M + Mᵀ by rows, never
        made), Mᵀ made on each call and not kept."""
        from .bothways import BothWays
        from .mentionmatrix import transpose

        mentions = self.mentions
        if not mentions.has_sorted_indices:
            mentions = mentions.sorted_indices()
        turned = transpose(mentions)
        return BothWays((mentions.indptr, mentions.indices, mentions.data),
                        (turned.indptr, turned.indices, turned.data), mentions.shape[0])

    def transform(self, document: str) -> sparse.csr_matrix:
        """A new text as a TF-IDF row in this index's vocabulary (as the corpus rows were made)."""
        return self.transform_many([document])

    def transform_many(self, documents: Sequence[str]) -> sparse.csr_matrix:
        """Texts as l2-normalised TF-IDF rows with this index's vocabulary and IDF."""
        if not self.vocabulary:
            return sparse.csr_matrix((len(documents), 0), dtype=np.float32)
        counts = self.term_counts([prepare_text(d, self.language) for d in documents])
        if SUBLINEAR:
            counts.data = 1.0 + np.log(counts.data)
        rows = counts.multiply(self.idf).tocsr().astype(np.float32)
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float64)).ravel()
        scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)
        return sparse.diags(scale.astype(np.float32)).dot(rows).tocsr().astype(np.float32)

    def term_counts(self, documents: Sequence[str]) -> sparse.csr_matrix:
        """Rows x vocabulary term counts (float32, sorted columns): what scikit-learn's CountVectorizer with this
        vocabulary and the fit's token pattern makes (lowercase, then tokens; stop words are never in the
        vocabulary, and terms are single tokens), without importing scikit-learn (2-5 s) for a few texts."""
        if self._terms is None:
            self._terms = (re.compile(TOKEN_PATTERN), {term: j for j, term in enumerate(self.vocabulary)})
        pattern, column = self._terms
        indptr, indices, data = [0], [], []
        for document in documents:
            tally: dict[int, int] = {}
            for token in pattern.findall(document.lower()):
                j = column.get(token)
                if j is not None:
                    tally[j] = tally.get(j, 0) + 1
            for j in sorted(tally):
                indices.append(j)
                data.append(tally[j])
            indptr.append(len(indices))
        return sparse.csr_matrix((np.array(data, dtype=np.float32), np.array(indices, dtype=np.int32),
                                  np.array(indptr, dtype=np.int32)), shape=(len(documents), len(self.vocabulary)))

    def tfidf_for_text(self, document: str) -> np.ndarray:
        if self._tfidf_t is None:
            self._tfidf_t = self.tfidf.T.tocsc()
        return (self.transform(document) @ self._tfidf_t).toarray()[0]

    def shared_terms(self, row_a: int | sparse.csr_matrix, row_b: int, n: int = 6) -> list[str]:
        """The terms two articles share, heaviest first (a may be a transformed text row)."""
        a = self.tfidf[row_a] if isinstance(row_a, (int, np.integer)) else row_a
        product = a.multiply(self.tfidf[row_b]).tocoo()
        best = np.argsort(-product.data)[:n]
        return [self.vocabulary[product.col[i]] for i in best]


def _float32_csr(matrix) -> sparse.csr_matrix:
    matrix = matrix.tocsr()
    return matrix if matrix.dtype == np.float32 else matrix.astype(np.float32)


def _csr_arrays(prefix: str, matrix: sparse.csr_matrix) -> dict[str, np.ndarray]:
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices, f"{prefix}_indptr": matrix.indptr,
            f"{prefix}_shape": np.array(matrix.shape, dtype=np.int64)}


def _csr_from(data, prefix: str) -> sparse.csr_matrix:
    shape = tuple(int(x) for x in data[f"{prefix}_shape"])
    return sparse.csr_matrix((data[f"{prefix}_data"], data[f"{prefix}_indices"], data[f"{prefix}_indptr"]),
                             shape=shape, copy=False)
