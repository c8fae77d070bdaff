"""Lexical rankers over a list of documents: the TF-IDF and BM25 baselines (and the lexical half of hybrids).

The TF-IDF configuration is the one `../shared/corpora/README.md` used for its published baselines, so our
figures can be compared with those: sublinear TF, English stop words, min_df=2, max_df=0.5, tokens of word
characters and inner hyphens, over ``title + " \\n" + text[:20000]``, cosine similarity.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

import numpy as np


class _Deferred:
    """A module imported on first attribute use: importing this module (the batch, the build, the CLI's error
    handling all do) costs no SciPy import; a query by id never needs it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


sparse = _Deferred("scipy.sparse")
TOKEN_PATTERN = r"(?u)\b\w[\w-]*\w\b|\b\w\b"
TEXT_LIMIT = 20000
# the apostrophe comes first and the word character before it is checked behind it: the same matches as
# (?<=\w)['’ʼ‘`]s\b and (?<=\w)['’ʼ‘`](?=\w), found about 4 times faster (the scan looks for the apostrophe)
_POSSESSIVE = re.compile(r"['’ʼ‘`](?<=\w['’ʼ‘`])s\b")
_INNER_APOSTROPHE = re.compile(r"['’ʼ‘`](?<=\w['’ʼ‘`])(?=\w)")


@dataclass(frozen=True)
class Language:
    """What the lexical index does by language: the stop words it leaves out (scikit-learn's list by name, or
    None) and whether English possessives and contractions are closed up (`normalise_apostrophes`)."""

    stop_words: str | None
    english_apostrophes: bool


# the languages the lexical index knows; an embedding model declares which one its texts are in (its `language`;
# all-MiniLM-L6-v2: "en"), and the lexical index records it (a multilingual model: "multi", no stop words)
LANGUAGES = {"en": Language("english", True), "multi": Language(None, False)}
DEFAULT_LANGUAGE = "en"


def language_of(code: str | None) -> Language:
    """The lexical settings of a language code (None: the default, English)."""
    try:
        return LANGUAGES[code or DEFAULT_LANGUAGE]
    except KeyError:
        raise ValueError(f"unknown language {code!r} (known: {', '.join(sorted(LANGUAGES))})") from None


def normalise_apostrophes(text: str) -> str:
    """Words with apostrophes stay whole words: a possessive loses its 's ("Python’s" -> "Python"), a
    contraction closes up ("don’t" -> "dont"), so no `s`, `t`, `ve` or `ll` tokens are made, curly or straight."""
    return _INNER_APOSTROPHE.sub("", _POSSESSIVE.sub("", text))


def lexical_document(title: str, text: str, language: str | None = None) -> str:
    """The string a lexical ranker indexes for one article."""
    return prepare_text((title or "") + " \n" + (text or "")[:TEXT_LIMIT], language)


def prepare_text(text: str, language: str | None = None) -> str:
    """A text as the lexical index tokenises it in this language (English: apostrophes closed up)."""
    return normalise_apostrophes(text) if language_of(language).english_apostrophes else text


def fit_tfidf(documents: list[str], language: str | None = None):
    """(fitted TfidfVectorizer, csr matrix) in the published configuration; a tiny corpus whose words all fall
    outside min_df/max_df is fitted without those bounds. ValueError if the documents have no words at all."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    min_df = 2 if len(documents) > 2 else 1
    max_df = 0.5 if len(documents) > 2 else 1.0
    vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words=language_of(language).stop_words, min_df=min_df,
                                 max_df=max_df, token_pattern=TOKEN_PATTERN, dtype=np.float32)
    try:
        return vectorizer, vectorizer.fit_transform(documents).tocsr()
    except ValueError:
        vectorizer.set_params(min_df=1, max_df=1.0)
        return vectorizer, vectorizer.fit_transform(documents).tocsr()


class TfidfRanker:
    """Sublinear TF-IDF with l2-normalised rows; the score of two documents is their cosine."""

    name = "tfidf"

    def __init__(self, documents: list[str], language: str | None = None):
        self.vectorizer, self.matrix = fit_tfidf(documents, language)
        self._transposed = self.matrix.T.tocsc()

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x n_docs) cosine scores."""
        return (self.matrix[np.asarray(rows)] @ self._transposed).toarray()

    def scores_for_text(self, text: str) -> np.ndarray:
        return (self.vectorizer.transform([text]) @ self._transposed).toarray()[0]

    def top_k(self, rows: np.ndarray, k: int, exclude_self: bool = True) -> tuple[np.ndarray, np.ndarray]:
        return _top_k(self, rows, k, exclude_self)


class BM25Ranker:
    """Okapi BM25 (k1=1.5, b=0.75) with the same tokens; a document's query is its own distinct terms."""

    name = "bm25"

    def __init__(self, documents: list[str], k1: float = 1.5, b: float = 0.75, language: str | None = None):
        from sklearn.feature_extraction.text import CountVectorizer

        self.vectorizer = CountVectorizer(stop_words=language_of(language).stop_words, token_pattern=TOKEN_PATTERN,
                                          dtype=np.float32)
        counts = self.vectorizer.fit_transform(documents).tocsr().astype(np.float32)
        n_docs = counts.shape[0]
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        avg = lengths.mean() if n_docs else 1.0
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        self.idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = counts.copy()
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        row_of_entry = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        tf.data = tf.data * (k1 + 1) / (tf.data + norm[row_of_entry])
        self.weights = tf.multiply(self.idf).tocsr()  # doc x term BM25 weights
        self._transposed = self.weights.T.tocsc()
        binary = counts.copy()
        binary.data[:] = 1.0
        self.presence = binary.tocsr()

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return (self.presence[np.asarray(rows)] @ self._transposed).toarray()

    def scores_for_text(self, text: str) -> np.ndarray:
        query = self.vectorizer.transform([text])
        query.data[:] = 1.0
        return (query.astype(np.float32) @ self._transposed).toarray()[0]

    def top_k(self, rows: np.ndarray, k: int, exclude_self: bool = True) -> tuple[np.ndarray, np.ndarray]:
        return _top_k(self, rows, k, exclude_self)


class RandomRanker:
    """Uniform random scores, reproducible for a seed."""

    name = "random"

    def __init__(self, n_docs: int, seed: int = 0):
        self.n_docs = n_docs
        self.rng = np.random.default_rng(seed)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.rng.random((len(rows), self.n_docs), dtype=np.float32)

    def top_k(self, rows: np.ndarray, k: int, exclude_self: bool = True) -> tuple[np.ndarray, np.ndarray]:
        return _top_k(self, rows, k, exclude_self)


def _top_k(ranker, rows: np.ndarray, k: int, exclude_self: bool, block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Best k (indices, scores) per query row, computed in blocks; ties by lower index; self excluded."""
    rows = np.asarray(rows)
    out_idx, out_scores = [], []
    for start in range(0, len(rows), block):
        part = rows[start:start + block]
        scores = ranker.scores(part).astype(np.float64)
        if exclude_self:
            scores[np.arange(len(part)), part] = -np.inf
        n = min(k, scores.shape[1] - (1 if exclude_self else 0))
        order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :n]
        out_idx.append(order)
        out_scores.append(np.take_along_axis(scores, order, axis=1))
    return np.vstack(out_idx), np.vstack(out_scores)


__all__ = ["TfidfRanker", "BM25Ranker", "RandomRanker", "fit_tfidf", "lexical_document", "sparse"]
