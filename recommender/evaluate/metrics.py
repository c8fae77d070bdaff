"""The measures of a ranking against curated lists: per-query metrics from the ranks of the gold items, those
ranks in a score vector, and the gold restricted to what an index holds."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

KS = (1, 5, 10, 20)


def metrics_from_ranks(ranks: Sequence[int], ks: Sequence[int] = KS) -> dict[str, float]:
    """All per-query metrics from the 1-based full-ranking ranks of a query's gold items."""
    if not len(ranks):
        raise ValueError("a query needs at least one gold item")
    ordered = sorted(int(r) for r in ranks)
    total = len(ordered)
    out: dict[str, float] = {}
    for k in ks:
        found = sum(1 for r in ordered if r <= k)
        out[f"recall@{k}"] = found / total
        out[f"precision@{k}"] = found / k
        out[f"hit@{k}"] = 1.0 if found else 0.0
    out["mrr"] = 1.0 / ordered[0]
    out["map"] = sum((i + 1) / r for i, r in enumerate(ordered)) / total
    for k in ks:
        dcg = sum(1.0 / math.log2(r + 1) for r in ordered if r <= k)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(total, k)))
        out[f"ndcg@{k}"] = dcg / ideal
    return out


def gold_ranks(scores: np.ndarray, gold_rows: Sequence[int]) -> list[int]:
    """Ranks of gold rows in one score vector: 1 + higher scores + equal scores on lower rows."""
    ranks = []
    positions = np.arange(scores.shape[0])
    for g in gold_rows:
        s = scores[g]
        ranks.append(int(1 + np.count_nonzero(scores > s) + np.count_nonzero((scores == s) & (positions < g))))
    return ranks


def gold_in_index(raw: dict[str, list[str]], row_of: dict[str, int]) -> tuple[dict[str, list[str]], int]:
    """The gold restricted to the index: queries and links it holds, self-links and repeats dropped, queries
    left without links removed; and how many links were dropped."""
    kept: dict[str, list[str]] = {}
    dropped = 0
    for query, related in raw.items():
        if query not in row_of:
            dropped += len(related)
            continue
        present = [r for r in dict.fromkeys(related) if r in row_of and r != query]
        dropped += len(related) - len(present)
        if present:
            kept[query] = present
    return kept, dropped
