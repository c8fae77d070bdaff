"""The learned score of single pairs (query, candidate), vectorised, for the nightly reach under a learned
ranking (recommender.batch.learned_reach): every signal of rank/signaltable.py pair by pair, with the corpus
statistics frozen."""

from __future__ import annotations

import numpy as np

from ..rank.graph_signals import NEIGHBOURS
from ..rank.signaltable import pair_columns


def voter_strength(z: dict, count: int) -> np.ndarray:
    """graph_signals.LinkGraphs.columns' strength of each candidate."""
    parts = [z[p] for p in ("dense", "lexical") if p in z]
    return np.maximum(np.mean(parts, axis=0), 0.0) if parts else np.zeros(count)


class QueryStats:
    """The frozen z-score statistics of every row (as HybridRanker and Frozen.row_stats give them)."""

    def __init__(self, job, frozen, used: dict):
        v = job.vectors
        mean = v @ frozen.mean_vector  # BLAS: a z-score here only decides a test with a slack
        second = ((v @ frozen.second_moment) * v).sum(axis=1)
        self.stats = {"dense": (mean, np.sqrt(np.maximum(second - mean ** 2, 0.0)))}
        # window_max (the learned signal window_max_z) comes with the window row
        parts = [p for p in ("lexical", "mention", "window") if used[p]] + (["window_max"] if used["window"] else [])
        for part in parts:
            self.stats[part] = (frozen.stats[part][:, 0], frozen.stats[part][:, 1])

    def z(self, part: str, rows: np.ndarray, raw: np.ndarray) -> np.ndarray:
        mean, std = self.stats[part]
        return (raw - mean[rows]) / np.where(std[rows] > 1e-12, std[rows], 1.0)


def as_csr(matrix, n: int):
    """A SciPy CSR matrix of a graph (read-only mapped arrays are copied)."""
    from scipy import sparse

    if sparse.issparse(matrix):
        return matrix
    return sparse.csr_matrix((np.asarray(matrix.data), np.asarray(matrix.indices), np.asarray(matrix.indptr)),
                             shape=(n, n))


def _pairs(matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[i], cols[i]] for every i (a sparse matrix), as float64."""
    if not len(rows):
        return np.zeros(0)
    return np.asarray(matrix[rows, cols], dtype=np.float64).ravel()


class PairView:
    """What the graph signals read of the pairs (qs[i], cs[i]) (graph_signals' views, pair by pair):
    `neighbour_lists` from each query's recorded voters."""

    def __init__(self, graph, qs: np.ndarray, cs: np.ndarray, cosine: np.ndarray, voters, values):
        self.graph, self.qs, self.rows, self.cosine = graph, qs, cs, cosine
        self.voters, self.values = voters, values

    def look(self, matrix) -> np.ndarray:
        return _pairs(matrix, self.qs, self.rows)

    def dense_stats(self) -> np.ndarray:
        return self.graph.dense_stats_of(self.rows)

    def votes(self) -> np.ndarray:
        cs, voters, values = self.rows, self.voters, self.values
        valid = (voters >= 0) & (values > 0)
        safe = np.where(valid, voters, 0)
        weights = np.where(valid, np.nan_to_num(values), 0.0)[:, :NEIGHBOURS]
        listed = np.asarray(self.graph.lists[safe[:, :NEIGHBOURS].ravel(), np.repeat(cs, NEIGHBOURS)]).reshape(
            len(cs), NEIGHBOURS) if NEIGHBOURS else np.zeros((len(cs), 0))
        return (weights * listed).sum(axis=1)


def pair_scores(job, stats: QueryStats, qs: np.ndarray, cs: np.ndarray, raw: dict, voters, values):
    """The learned score and the strength of each pair (qs[i], cs[i]): every signal of the signal table pair by
    pair (signaltable.pair_columns), `neighbour_lists` from each query's recorded voters."""
    model, facts, graph = job.learned, job.site_facts, job.graph
    a = np.asarray(model.coef, np.float64) / np.asarray(model.scale, np.float64)
    score = np.full(len(qs), float(model.intercept) - float(a @ np.asarray(model.mean, np.float64)))
    if not len(qs):
        return score, score
    raw = {**raw, "mention": _pairs(graph.mentions, qs, cs) + _pairs(graph.mentions, cs, qs)}
    z = {part: stats.z(part, qs, raw[part]) for part in stats.stats}
    signals = pair_columns(lambda part: z.get(part, 0.0), facts, graph,
                           PairView(graph, qs, cs, raw["dense"], voters, values), qs, cs)
    for w, x in zip(a, signals):
        score = score + w * x
    return score, voter_strength(z, len(qs))
