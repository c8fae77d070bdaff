"""The learned score of single pairs (query, candidate), vectorised, for the nightly reach under a learned
ranking (recommender.batch.learned_reach): the signals of signals.pair_signals and graph_signals.LinkGraphs.columns
pair by pair, with the corpus statistics frozen."""

from __future__ import annotations

import numpy as np

from ..rank.graph_signals import NEIGHBOURS, dense_rz


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


def pair_scores(job, stats: QueryStats, qs: np.ndarray, cs: np.ndarray, raw: dict, voters, values):
    """The learned score and the strength of each pair (qs[i], cs[i]): the signals of signals.pair_signals and
    graph_signals.LinkGraphs.columns pair by pair, `neighbour_lists` from each query's recorded voters."""
    model, facts, graph = job.learned, job.site_facts, job.graph
    a = np.asarray(model.coef, np.float64) / np.asarray(model.scale, np.float64)
    score = np.full(len(qs), float(model.intercept) - float(a @ np.asarray(model.mean, np.float64)))
    if not len(qs):
        return score, score
    z = {"dense": stats.z("dense", qs, raw["dense"])}
    if "lexical" in stats.stats:
        z["lexical"] = stats.z("lexical", qs, raw["lexical"])
    named, naming = _pairs(graph.mentions, qs, cs), _pairs(graph.mentions, cs, qs)
    if "mention" in stats.stats:
        z["mention"] = stats.z("mention", qs, named + naming)
    signals = [z.get("dense", 0.0), z.get("lexical", 0.0), z.get("mention", 0.0)]
    signals += site_signals(facts, qs, cs) if facts is not None else [0.0] * 10
    for part in ("window", "window_max"):
        signals.append(stats.z(part, qs, raw[part]) if part in stats.stats else 0.0)
    cstats = graph.dense_stats_of(cs)
    own = _pairs(graph.lists, qs, cs)
    valid = (voters >= 0) & (values > 0)
    safe = np.where(valid, voters, 0)
    weights = np.where(valid, np.nan_to_num(values), 0.0)[:, :NEIGHBOURS]
    listed = np.asarray(graph.lists[safe[:, :NEIGHBOURS].ravel(), np.repeat(cs, NEIGHBOURS)]).reshape(
        len(cs), NEIGHBOURS) if NEIGHBOURS else np.zeros((len(cs), 0))
    signals += [named, naming, graph.named_by[cs].astype(np.float64),
                dense_rz(raw["dense"], cstats),
                np.log1p(np.maximum(graph.in_links[cs] - own, 0)), _pairs(graph.lists, cs, qs),
                np.maximum(_pairs(graph.co, qs, cs) - own, 0), (weights * listed).sum(axis=1)]
    for w, x in zip(a, signals):
        score = score + w * x
    return score, voter_strength(z, len(qs))


def site_signals(facts, qs: np.ndarray, cs: np.ndarray) -> list:
    """signals.pair_signals' columns 3-12 (title_overlap .. same_page_type), pair by pair."""
    def shared(matrix):
        matrix = matrix.tocsr()  # querydata.MappedCSR (a query's mapped arrays) as SciPy's; SciPy's own as it is
        return np.asarray(matrix[qs].multiply(matrix[cs]).sum(axis=1), dtype=np.float64).ravel()

    tl_q, tl_c = facts.title_len[qs], facts.title_len[cs]
    common_titles = shared(facts.titles)
    union = tl_q + tl_c - common_titles
    title = np.where((tl_q > 0) & (union > 0), common_titles / np.maximum(union, 1), 0.0)
    tag_matrix = facts.tags.tocsr()
    tags = np.asarray(tag_matrix[qs].multiply(tag_matrix[cs]) @ np.asarray(facts.tag_idf, np.float64)).ravel()
    authors = (shared(facts.authors) > 0).astype(np.float64)
    qlen, clen = facts.path_len[qs], facts.path_len[cs]
    common = np.cumprod(facts.path_prefix[cs] == facts.path_prefix[qs], axis=1).sum(axis=1)
    proximity = np.where((qlen > 0) & (clen > 0), common / np.maximum(np.maximum(clen, qlen), 1), 0.0)
    parent = (qlen > 0) & (clen > 0) & (common == np.minimum(clen, qlen)) & (np.abs(clen - qlen) == 1)
    qday, cday = facts.days[qs], facts.days[cs]
    known = ~np.isnan(cday) & ~np.isnan(qday)
    gap = np.where(known, np.abs(np.nan_to_num(cday) - np.nan_to_num(qday)), 0.0)
    older = known & (np.nan_to_num(cday) < np.nan_to_num(qday))
    source = (facts.sources[cs] == facts.sources[qs]) & (facts.sources[qs] >= 0)
    page = (facts.page_types[cs] == facts.page_types[qs]) & (facts.page_types[qs] >= 0)
    return [title, tags, authors, np.log1p(gap), known, older, source, proximity, parent, page]
