"""How far the corpus statistics frozen at the last full rebuild are from those of the corpus as it is now.

Between full rebuilds the batch keeps the IDF (and the vocabulary) of the last lexical fit, and the embedding
mean and second moment of the last full run (recommender.incremental). Both measures here are cheap at batch
time: they read what an incremental run has anyway (the TF-IDF rows of every article in the frozen vocabulary,
and every vector).

* idf_shift: the IDF the frozen vocabulary would get on today's corpus (scikit-learn's smoothed IDF, from each
  term's document frequency now), against the frozen IDF: sum over terms of df * |idf_now - idf_frozen| divided
  by sum of df * idf_frozen (a relative change, weighted by how often each term occurs in a document). Words
  that are not in the frozen vocabulary are not seen.
* dense_shift: how far today's embedding mean moved from the frozen one, in each article's own deviation (the
  unit of its dense z-score): the mean over articles q of |v_q . (mean_now - mean_frozen)| / std_q, std_q
  from the frozen moments.

docs/batch.md has the measurement (scripts/measure_drift.py) that relates them to list drift.
"""

from __future__ import annotations

import numpy as np


def idf_shift(tfidf, idf: np.ndarray) -> float:
    """Relative, document-frequency weighted change of the frozen IDF on the corpus whose rows `tfidf` holds."""
    n = tfidf.shape[0]
    if n == 0 or tfidf.shape[1] == 0:
        return 0.0
    df = np.bincount(tfidf.tocsr().indices, minlength=tfidf.shape[1]).astype(np.float64)
    now = np.log((1.0 + n) / (1.0 + df)) + 1.0
    frozen = np.asarray(idf, dtype=np.float64)
    weight = float((df * frozen).sum())
    return float((df * np.abs(now - frozen)).sum() / weight) if weight > 0 else 0.0


def dense_shift(vectors: np.ndarray, mean: np.ndarray, second: np.ndarray) -> float:
    """Mean over articles of the embedding mean's move along each article's vector, in its frozen deviations."""
    if len(vectors) == 0:
        return 0.0
    v = np.asarray(vectors, dtype=np.float64)
    frozen_mean = np.asarray(mean, dtype=np.float64)
    moved = v @ (v.mean(axis=0) - frozen_mean)
    centre = v @ frozen_mean
    var = np.einsum("qd,qd->q", v @ np.asarray(second, dtype=np.float64), v) - centre ** 2
    std = np.sqrt(np.maximum(var, 1e-12))
    return float(np.mean(np.abs(moved) / std))
