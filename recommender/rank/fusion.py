"""Score fusion of two rankers (the dense model and a lexical baseline): per query, each ranker's scores over the
whole corpus are turned into z-scores (mean 0, standard deviation 1) and mixed with a weight, so neither ranker's
scale decides. This is the measured starting point of the hybrid ranking (issue 6), evaluated beside the
systems it mixes."""

from __future__ import annotations

import numpy as np


def zscores(scores: np.ndarray) -> np.ndarray:
    """Row-wise z-scores; a constant row becomes zeros."""
    scores = np.asarray(scores, dtype=np.float32)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.where(std > 0, std, 1.0)


class FusionScorer:
    """weight * z(lexical) + (1 - weight) * z(dense), per query row."""

    def __init__(self, dense, lexical, weight: float, name: str | None = None):
        if not 0.0 <= weight <= 1.0:
            raise ValueError("fusion weight must be between 0 and 1")
        self.dense = dense
        self.lexical = lexical
        self.weight = weight
        self.name = name or f"hybrid-{lexical.name}-{weight:g}"

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.weight * zscores(self.lexical.scores(rows)) + (1 - self.weight) * zscores(self.dense.scores(rows))
