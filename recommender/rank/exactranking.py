"""The exact reference ranking (`[ranking] retrieval = "exact"`): every query scored against the whole corpus, each
part's z-score from its full row (recommender.rank.ranking.HybridRanker; the two-stage ranking is measured against
it), and the z-score helpers both rankings share.

    results = score_exact(ranker, ranker.vectors[rows], rows, lexical_rows, mention_rows)
"""

from __future__ import annotations

import numpy as np

from .corpusstats import PoolBounds
from .topk import sorted_unique


def used_stats(stats: dict[str, tuple[np.ndarray, np.ndarray]], i: int) -> dict[str, tuple[float, float]]:
    """Query i's (mean, deviation) of each part, from a block's (rows x 1) arrays (PoolBounds.stats)."""
    return {part: (float(mean[i, 0]), float(std[i, 0])) for part, (mean, std) in stats.items()}


def zscore(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (values - mean) / np.where(std > 1e-12, std, 1.0)


def row_stats(dense_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each row (one query's scores over the corpus)."""
    return dense_rows.mean(axis=1, keepdims=True), dense_rows.std(axis=1, keepdims=True)


def score_exact(ranker, queries: np.ndarray, query_rows: np.ndarray, lexical: np.ndarray | None,
                mention: np.ndarray | None, window: tuple | None = None) -> list:
    """The exact reference for a ranking.HybridRanker (a ranking.Candidates per query): every part's full row.
    `window`: (window score rows, max-sim rows) when the window part is used."""
    depth = ranker.ranking.candidates + 1
    dense_mean, dense_std = ranker.dense_stats(queries)
    dense_cands = ranker.dense_candidates(queries, depth)
    if lexical is not None:
        lex_mean, lex_std = row_stats(lexical)
        lex_depth = min(ranker.n, depth)
        lex_cands = np.argpartition(-lexical, lex_depth - 1, axis=1)[:, :lex_depth]
        if ranker.frozen is not None:
            lex_mean, lex_std = ranker.frozen.row_stats("lexical", query_rows, lex_mean, lex_std)
    if mention is not None:
        men_mean, men_std = row_stats(mention)
        if ranker.frozen is not None:
            men_mean, men_std = ranker.frozen.row_stats("mention", query_rows, men_mean, men_std)
    if window is not None:
        window, window_max = window
        win_mean, win_std = row_stats(window)
        max_mean, max_std = row_stats(window_max)
        win_depth = min(ranker.n, depth)
        win_cands = np.argpartition(-window, win_depth - 1, axis=1)[:, :win_depth]
        if ranker.frozen is not None:
            win_mean, win_std = ranker.frozen.row_stats("window", query_rows, win_mean, win_std)
            max_mean, max_std = ranker.frozen.row_stats("window_max", query_rows, max_mean, max_std)
    used = {}  # part -> the (mean, deviation) rows each query was normalised with
    if lexical is not None:
        used["lexical"] = (lex_mean, lex_std)
    if mention is not None:
        used["mention"] = (men_mean, men_std)
    if window is not None:
        used["window"], used["window_max"] = (win_mean, win_std), (max_mean, max_std)
    tagged = ranker.tag_pool(query_rows, depth) if ranker.tag_pool is not None and query_rows[0] >= 0 else None
    results = []
    for i, q in enumerate(query_rows):
        pool = [dense_cands[i]]
        if tagged is not None:
            pool.append(tagged[i])
        if lexical is not None:
            pool.append(lex_cands[i])
        if window is not None:
            pool.append(win_cands[i])
        if mention is not None:
            pool.append(np.flatnonzero(mention[i]))
        cand = sorted_unique(np.concatenate(pool))
        cand = cand[(cand >= 0) & (cand != q)]
        raw = {"dense": ranker.vectors[cand] @ queries[i]}
        z = {"dense": zscore(raw["dense"], dense_mean[i], dense_std[i])}
        if window is not None:
            raw["window"] = window[i, cand]
            z["window"] = zscore(raw["window"], win_mean[i], win_std[i])
            raw["window_max"] = window_max[i, cand]  # a signal of the learned ranking, not a weighted part
            z["window_max"] = zscore(raw["window_max"], max_mean[i], max_std[i])
        if lexical is not None:
            raw["lexical"] = lexical[i, cand]
            z["lexical"] = zscore(raw["lexical"], lex_mean[i], lex_std[i])
        if mention is not None:
            raw["mention"] = mention[i, cand]
            z["mention"] = zscore(raw["mention"], men_mean[i], men_std[i])
        pools = None
        if ranker.frozen is not None:  # the weakest member of each candidate pool
            pools = PoolBounds(dense=float((ranker.vectors[dense_cands[i]] @ queries[i]).min()),
                               lexical=float(lexical[i, lex_cands[i]].min()) if lexical is not None else None,
                               window=float(window[i, win_cands[i]].min()) if window is not None else None,
                               mention=0.0 if mention is not None else None,  # the whole row is in the pool
                               stats=used_stats(used, i))
        results.append(ranker.finish(q, cand, raw, z, pools))
    return results
