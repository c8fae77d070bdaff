"""How well a window index finds each query window's nearest stored windows, and the nprobe chosen from it.

    check = RecallCheck(codes, scales)           # seeded query windows and their exact nearest, computed once
    stats = tune_nprobe(ann, codes, scales)      # the smallest nprobe reaching RECALL_TARGET (the manifest's stats)

recall@k counts a found window when its exact similarity reaches the exact k-th best (ties are not misses). Where
the index's 8-bit codes cannot tell near-copies apart, the target is capped by the index's own ceiling (a search of
every list). A night that keeps the last version's training measures (or carries) its recall and keeps the
training while it reaches `keep_floor`. Measured: docs/scale.md, "The window search tuned on what the ranking
needs" and "The 1M windows' recall ceiling".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import windowann
from .windowann import window_rows

if TYPE_CHECKING:
    from .windowann import WindowANN

# nprobe is tuned on each query window's 10 nearest windows, to find at least 97.5% of them. The nearest windows are
# what the articles that rank come in by (a query window retrieves about 256, and an article's window score is its
# windows' best similarities). Measured on MDN's prose pages with the IVF forced on (docs/scale.md, "Window
# candidates"): nprobe 16 (recall@10 0.979, recall@50 0.951) keeps every figure within 0.003 of the exact search's,
# the cross-validated learned ranking for new articles included, as nprobe 48 (0.990 / 0.983: the tuning before,
# on recall@50 >= 0.98) did; nprobe 8 (0.959 / 0.907) moves that one by -0.005 / +0.007.
RECALL_K = 10
RECALL_TARGET = 0.975
# a kept training (a night's index: reusable_training) and its nprobe stay while their recall is at least this:
# the target less an allowance for the sampling noise of its 500 query windows (which shift as articles come and
# go), so that a night does not train anew (and rank every list again) over noise alone
RECALL_KEEP = 0.965
RECALL_QUERIES = 500  # stored windows sampled (seeded) as queries for the tuning
# What no nprobe can find: the index's 8-bit codes move a similarity by about 1e-3, so among windows closer to each
# other than that (a window repeated with small changes across many articles: a template, or bench_scale's
# jittered copies, 68 of each window at 1M articles) the index's 10 nearest are not the exact 10 nearest at any
# nprobe (recall@10 0.85 at every nprobe up to 256 at 1M). When the target is missed from CEILING_FROM on, the
# recall of the index searching every list (its ceiling) is measured, and the target becomes at most the ceiling
# less CEILING_MARGIN: what MDN's tuning asks (nprobe 16: 0.979 against a ceiling of 0.996; 12: 0.972 misses).
CEILING_FROM = 16
CEILING_MARGIN = 0.01
# a kept training's recall is carried from its last measure while the windows new, changed or removed since then
# are at most this share of the windows (store.windowfiles.carried_recall): with the same training, nprobe and
# lists, a query finds an unchanged window exactly when it did, so only pairs with a new window move the figure
RECALL_DRIFT = 0.05
NPROBES = (windowann.FIRST_NPROBE, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)  # tried in this order


def exact_neighbours(codes: np.ndarray, scales: np.ndarray | None, queries: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sims, ids) of each query's k nearest windows by brute force over every window, a block at a time."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n = len(codes)
    k = min(k, n)
    best_sims = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 0), np.int64)
    for start in range(0, n, windowann.BLOCK):
        stop = min(n, start + windowann.BLOCK)
        sims = queries @ window_rows(codes, scales, slice(start, stop)).T
        sims = np.concatenate([best_sims, sims], axis=1)
        ids = np.concatenate([best_ids, np.broadcast_to(np.arange(start, stop), (len(queries), stop - start))], 1)
        keep = np.argpartition(-sims, k - 1, axis=1)[:, :k] if sims.shape[1] > k else np.argsort(-sims, axis=1)
        best_sims, best_ids = np.take_along_axis(sims, keep, 1), np.take_along_axis(ids, keep, 1)
    order = np.argsort(-best_sims, axis=1, kind="stable")
    return np.take_along_axis(best_sims, order, 1), np.take_along_axis(best_ids, order, 1)


class RecallCheck:
    """recall@k of a window index against exact search, on `queries` stored windows sampled with a seed, each
    query's own window excluded. A found window counts when its exact similarity reaches the exact k-th best
    (ties are not misses). The exact neighbours are computed once; `recall` then measures any nprobe."""

    def __init__(self, codes: np.ndarray, scales: np.ndarray | None, k: int = RECALL_K,
                 queries: int = RECALL_QUERIES, seed: int = 0):
        n = len(codes)
        self.codes, self.scales = codes, scales
        self.k = max(1, min(k, n - 1))
        self.rows = np.sort(np.random.default_rng(seed).choice(n, min(queries, n), replace=False))
        self.queries = window_rows(codes, scales, self.rows)
        sims, ids = exact_neighbours(codes, scales, self.queries, self.k + 1)
        # the k-th best similarity of each query, its own window excluded
        self.kth = np.array([s[i != q][self.k - 1] for q, s, i in zip(self.rows, sims, ids)], np.float32)

    def recall(self, ann: "WindowANN") -> float:
        _, found = ann.search(self.queries, self.k + 1)
        hits = 0
        for query, vector, got, threshold in zip(self.rows, self.queries, found, self.kth):
            got = got[(got != query) & (got >= 0)][:self.k]
            if len(got):
                hits += int((window_rows(self.codes, self.scales, np.sort(got)) @ vector >= threshold - 1e-5).sum())
        return round(hits / (self.k * len(self.rows)), 4)


def tune_nprobe(ann: WindowANN, codes: np.ndarray, scales: np.ndarray | None, k: int = RECALL_K,
                target: float = RECALL_TARGET, queries: int = RECALL_QUERIES, seed: int = 0,
                keep: bool = False, nprobes: tuple | None = None, check: RecallCheck | None = None) -> dict:
    """Set an IVF index's nprobe to the smallest of `nprobes` (NPROBES) whose recall@k reaches `target` (else the
    largest tried); returns the manifest's stats: recall@k, nprobe, lists, queries. A flat index is exact: {}.
    When the target is missed from nprobe CEILING_FROM on, the recall of a search of every list is measured
    (`window_ann_recall_ceiling`) and the target is at most that less CEILING_MARGIN: no nprobe finds what the
    8-bit codes cannot tell apart. keep: measure the recall at the index's nprobe only (a night that keeps the
    last version's training and nprobe), and the ceiling too when it is below RECALL_KEEP (`keep_floor`).
    check: a RecallCheck already made (its k, queries and seed)."""
    if not ann.approximate:
        return {}
    check = check or RecallCheck(codes, scales, k, queries, seed)
    nlist = int(ann.index.nlist)
    nprobes = NPROBES if nprobes is None else nprobes
    recalls, ceiling, goal = {}, None, target
    for nprobe in [ann.nprobe] if keep else [p for p in nprobes if p < nlist] + [nlist]:
        ann.nprobe = nprobe
        recalls[nprobe] = check.recall(ann)
        if keep:
            if recalls[nprobe] < RECALL_KEEP:
                ceiling = recall_ceiling(ann, check)
            break
        if recalls[nprobe] >= goal:
            break
        if ceiling is None and nprobe >= CEILING_FROM and nprobe < nlist:
            ceiling = recall_ceiling(ann, check)
            goal = min(target, ceiling - CEILING_MARGIN)
            reached = [p for p, r in recalls.items() if r >= goal]
            if reached:
                ann.nprobe = min(reached)
                break
        if nprobe >= min(nlist, nprobes[-1]):
            break
    stats = {f"window_ann_recall@{check.k}": recalls[ann.nprobe], "window_ann_nprobe": ann.nprobe,
             "window_ann_nlist": nlist, "window_ann_recall_queries": int(len(check.rows))}
    if ceiling is not None:
        stats["window_ann_recall_ceiling"] = ceiling
    return stats


def recall_ceiling(ann: WindowANN, check: RecallCheck) -> float:
    """recall@k of the index searching every list: what its 8-bit codes find at any nprobe (its nprobe kept)."""
    kept = ann.nprobe
    ann.nprobe = int(ann.index.nlist)
    try:
        return check.recall(ann)
    finally:
        ann.nprobe = kept


def keep_floor(stats: dict) -> float:
    """The recall@k a kept training must reach (a night's index): RECALL_KEEP, or where the ceiling was measured
    at most the ceiling less CEILING_MARGIN and the same allowance for sampling noise (RECALL_TARGET - RECALL_KEEP)."""
    ceiling = stats.get("window_ann_recall_ceiling")
    if ceiling is None:
        return RECALL_KEEP
    return min(RECALL_KEEP, ceiling - CEILING_MARGIN - (RECALL_TARGET - RECALL_KEEP))
