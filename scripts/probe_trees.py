"""Probe (issue 23): the learned ranking's model as gradient-boosted trees (scikit-learn's
HistGradientBoostingClassifier, classes balanced) instead of the linear pointwise / listwise models, on the same
folds, signals and protocols as `scripts/probe_topics.py learned` with no column added (whose `base` row is
`evaluate`'s learned row). Trees could weigh the signals by one another (a neighbour's list vote where the dense
score is high, say), which a linear model cannot.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_trees.py --corpus NAME=INDEX=GOLD \
        [--protocols new] [--seed 0] [--leaves 15] [--iterations 200] [--linear]

--linear: the shipped models (the reference row). Nothing is written. Figures: docs/ranking.md, "Gradient-boosted
trees over the same signals: tried".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import probe_topics  # noqa: E402 (scripts/)

from recommender.evaluate import training  # noqa: E402


class Trees:
    """A fitted HistGradientBoostingClassifier with what the cross-validation asks of a model (`score`)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, leaves: int, iterations: int):
        from sklearn.ensemble import HistGradientBoostingClassifier

        weight = np.where(y, 0.5 / max(1, int(y.sum())), 0.5 / max(1, int((~y).sum()))) * len(y)
        self.model = HistGradientBoostingClassifier(max_iter=iterations, learning_rate=0.05, max_leaf_nodes=leaves,
                                                    min_samples_leaf=40, l2_regularization=1.0, random_state=0)
        self.model.fit(X, y, sample_weight=weight)

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.model.decision_function(X).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="NAME=INDEX=GOLD")
    parser.add_argument("--protocols", default="new")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leaves", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--linear", action="store_true")
    args = parser.parse_args()
    if not args.linear:
        training.fit = lambda X, y, qs, name, negative_rate=1.0: Trees(X, y, args.leaves, args.iterations)
        nested = probe_topics.nested_scores

        def trees_only(*a, **k):  # probe_topics asks for both objectives: one model, trees
            training.OBJECTIVES = ("pointwise",)
            return nested(*a, **k)

        probe_topics.nested_scores = trees_only
    probe_topics.learned(argparse.Namespace(corpus=[args.corpus], protocols=args.protocols, seed=args.seed), [])


if __name__ == "__main__":
    main()
