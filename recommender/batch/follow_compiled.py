"""window_batch.follow_many's block as two compiled loops (numba), for processes that run the compiled loops (the
nightly batch: store.compiledtopk.use_compiled), list by list, as window_reach.follow does it.

A 1% night on MDN follows the window pools of about 12,000 kept lists (the fast path's and the slow path's);
window_batch._Block does it for 256 lists at a time in some forty NumPy passes over the block's records (about
3 s a night on MDN). Here one pass per list does what `follow` does:

* `_segments`: each query window's recorded windows of unchanged articles above its floor merged with the changed
  articles' windows above it (recorded first at equal similarity, as follow's stable sort), the new near record,
  the lasts, and the owners of each query window's best `per` (in the order first met), each owner's score where
  it is known (the stored pool's for an unchanged member, changed_pairs' values for a changed one) and its
  kind: an earlier owner outside the pool (`LATER`: scored only when the pool may need it) or a new one (`NEW`);
* between the two, `WindowScores.pairs` for the owners to score (CompiledBlock, in Python: the windows' products);
* `_pools`: the best `depth` owners by (score descending, row), refused on a tie at the pool's boundary.

A list whose recorded windows are not best first, or whose `per`-th window ties with the next (follow's tie rule,
`_top_owners`), or which has a NaN score, is left to `follow` itself (BY_FOLLOW); a list whose margin ran out gets
None (NO_POOL), as from follow. tests/batch/test_batched_reach.py compares every list with `follow`.
"""

from __future__ import annotations

import numpy as np

from ..common.sortkeys import value_then_row_keys
from .window_reach import SLACK, per_window

POOL, NO_POOL, BY_FOLLOW = 0, 1, 2  # a list's status: its pool here, None, or follow's own
OLD, CHANGED, LATER, NEW = 0, 1, 2, 3  # an owner: a kept pool member, a changed article, an earlier owner, new


def _segments(seg_off, per_l, floors, rec_off, rows_e, sims_e, add_off, a_rows, a_sims, moved, p_off, p_rows,
              p_score, p_best, cols, q_of, changed_score, changed_best, depth, m_off, m_rows, m_sims, lasts,
              o_off, o_rows, o_score, o_best, o_kind, status, in_pool, top, before):
    """Per list e: the merged records (segment s's at m_off[s]:m_off[s+1]), lasts, owners (o_off[e]:o_off[e+1]),
    their known scores and kinds, and the status. cols: the changed articles (sorted; changed_score's rows;
    its column q_of[e] is list e's).
    `in_pool` (left zero), `top`, `before`: scratch of n zeros."""
    m = 0
    o = 0
    for e in range(len(per_l)):
        per = per_l[e]
        o_off[e] = o
        short, unsure = False, False
        for s in range(seg_off[e], seg_off[e + 1]):
            m_off[s] = m
            r0, r1, a, a1 = rec_off[s], rec_off[s + 1], add_off[s], add_off[s + 1]
            for r in range(r0 + 1, r1):
                if sims_e[r] > sims_e[r - 1]:
                    unsure = True  # not best first: follow sorts them
            floor = floors[s]
            r = r0
            while r < r1 or a < a1:
                while r < r1 and not (rows_e[r] >= 0 and not moved[rows_e[r]] and sims_e[r] > floor):
                    r += 1
                if r < r1 and (a >= a1 or sims_e[r] >= a_sims[a]):
                    m_rows[m], m_sims[m] = rows_e[r], sims_e[r]
                    r += 1
                elif a < a1:
                    m_rows[m], m_sims[m] = a_rows[a], a_sims[a]
                    a += 1
                else:
                    break
                m += 1
            count = m - m_off[s]
            if count < per:
                short = True
                continue
            last = m_sims[m_off[s] + per - 1]
            lasts[s] = last
            if count > per:
                if not last > m_sims[m_off[s] + per]:
                    unsure = True  # the per-th ties with the next: follow's tie rule
            elif not np.float64(last) > floor:
                unsure = True
        m_off[seg_off[e + 1]] = m
        if short:
            status[e] = NO_POOL
            continue
        if unsure:
            status[e] = BY_FOLLOW
            continue
        status[e] = POOL
        owners = 0  # the distinct owners of the best `per` of each query window (`top` stamped e + 1)
        for s in range(seg_off[e], seg_off[e + 1]):
            for t in range(m_off[s], m_off[s] + per):
                if top[m_rows[t]] != e + 1:
                    top[m_rows[t]] = e + 1
                    o_rows[o + owners] = m_rows[t]
                    owners += 1
        p0, p1 = p_off[e], p_off[e + 1]
        for i in range(p0, p1):  # a pool's rows are distinct (candidates.pool_of)
            if p_rows[i] >= 0:
                in_pool[p_rows[i]] = i + 1
        for s in range(seg_off[e], seg_off[e + 1]):
            for r in range(rec_off[s], min(rec_off[s] + per, rec_off[s + 1])):
                if rows_e[r] >= 0:
                    before[rows_e[r]] = e + 1
        q = q_of[e]
        for t in range(o, o + owners):
            row = o_rows[t]
            if moved[row]:
                o_kind[t] = CHANGED
                c = np.searchsorted(cols, row)
                o_score[t], o_best[t] = changed_score[c, q], changed_best[c, q]
            elif in_pool[row] > 0:
                o_kind[t] = OLD
                o_score[t], o_best[t] = p_score[in_pool[row] - 1], p_best[in_pool[row] - 1]
            else:
                o_kind[t] = LATER if before[row] == e + 1 and p1 - p0 >= depth else NEW
                o_score[t], o_best[t] = 0.0, 0.0
        for i in range(p0, p1):
            if p_rows[i] >= 0:
                in_pool[p_rows[i]] = 0
        o += owners
    o_off[len(per_l)] = o


def _pools(o_off, o_keys, o_score, o_kind, status, depth, slack, pool_off, pool):
    """Per list with status POOL: its pool, the best `depth` owners scored (kind not LATER) by (score descending,
    row), as positions among the owners, at pool[pool_off[e]:pool_off[e + 1]]; NO_POOL on a tie at the pool's
    boundary (float32 slack, as follow compares), BY_FOLLOW on a NaN score. o_keys: each owner's (score
    descending, row) key (common.sortkeys.value_then_row_keys; distinct within a list)."""
    at = 0
    for e in range(len(status)):
        pool_off[e] = at
        if status[e] != POOL:
            continue
        o0, o1 = o_off[e], o_off[e + 1]
        scored = np.empty(o1 - o0, np.int64)
        ns = 0
        nan = False
        for t in range(o0, o1):
            if o_kind[t] != LATER:
                scored[ns] = t
                ns += 1
                if np.isnan(o_score[t]):
                    nan = True
        if nan:
            status[e] = BY_FOLLOW
            continue
        scored = scored[:ns]
        order = scored[np.argsort(o_keys[scored])]
        if ns > depth and o_score[order[depth - 1]] <= o_score[order[depth]] + slack:
            status[e] = NO_POOL
            continue
        for i in range(min(depth, ns)):
            pool[at] = order[i]
            at += 1
    pool_off[len(status)] = at


def check_segments(kernel) -> None:
    """One list, one query window, per 2: a recorded window of a changed article dropped, a changed window merged;
    the owners in the order first met."""
    i64, f32 = np.int64, np.float32
    out = _run_segments(kernel, per=2, rows_e=np.array([4, 1, 2], i64), sims_e=np.array([0.9, 0.8, 0.5], f32),
                        floor=0.4, a_rows=np.array([3], i64), a_sims=np.array([0.7], f32),
                        moved=np.array([0, 1, 0, 1, 0], np.bool_), pool=np.array([4, 2], i64))
    m_rows, status, owners, kinds = out
    if m_rows.tolist() != [4, 3, 2] or status != POOL or owners.tolist() != [4, 3] or kinds.tolist() != [OLD, CHANGED]:
        raise ValueError(f"a wrong answer on the first try: {m_rows.tolist()}, {status}, {owners.tolist()}")


def _run_segments(kernel, per, rows_e, sims_e, floor, a_rows, a_sims, moved, pool):
    n = len(moved)
    i64, f32 = np.int64, np.float32
    cols = np.flatnonzero(moved).astype(i64)
    size = len(rows_e) + len(a_rows)
    m_rows, m_sims, o_rows = np.empty(size, i64), np.empty(size, f32), np.empty(size, i64)
    o_score, o_best, o_kind = np.empty(size, f32), np.empty(size, f32), np.empty(size, np.int8)
    m_off, o_off, status = np.empty(2, i64), np.empty(2, i64), np.empty(1, np.int8)
    kernel(np.array([0, 1], i64), np.array([per], i64), np.array([floor]), np.array([0, len(rows_e)], i64), rows_e,
           sims_e, np.array([0, len(a_rows)], i64), a_rows, a_sims, moved, np.array([0, len(pool)], i64), pool,
           np.ones(len(pool), f32), np.ones(len(pool), f32), cols, np.array([0], i64), np.ones((len(cols), n), f32),
           np.ones((len(cols), n), f32), 2, m_off, m_rows, m_sims, np.empty(1), o_off, o_rows, o_score,
           o_best, o_kind, status, np.zeros(n, i64), np.zeros(n, i64), np.zeros(n, i64))
    return m_rows[:m_off[1]], int(status[0]), o_rows[o_off[0]:o_off[1]], o_kind[o_off[0]:o_off[1]]


def check_pools(kernel) -> None:
    """Three owners, the lower row first at equal scores, pools of 2."""
    i64 = np.int64
    pool_off, pool, status = np.empty(2, i64), np.empty(3, i64), np.zeros(1, np.int8)
    scores = np.array([0.5, 0.9, 0.9], np.float32)
    kernel(np.array([0, 3], i64), value_then_row_keys(scores, np.array([3, 2, 1], i64)), scores,
           np.array([NEW, OLD, OLD], np.int8), status, 2, np.float32(SLACK), pool_off, pool)
    if status[0] != POOL or pool[:pool_off[1]].tolist() != [2, 1]:
        raise ValueError(f"a wrong answer on the first try: {status[0]}, {pool[:pool_off[1]].tolist()}")


def kernels():
    """(_segments, _pools) compiled, or None where this process does not run the compiled loops or numba cannot
    build them (window_batch._Block's NumPy steps then: the same results)."""
    from ..store.compiledtopk import kernel_for

    segments = kernel_for("follow_segments", _segments, check_segments)
    pools = kernel_for("follow_pools", _pools, check_pools) if segments is not None else None
    return (segments, pools) if pools is not None else None


class CompiledBlock:
    """window_batch._Block's results for a block of lists, from the compiled loops: `fallback[e]` (follow's own),
    `result(e)`."""

    def __init__(self, kernels, windows, changed, js, nears, pools, moved, changed_score, changed_best, depth, n):
        segments, pick = kernels
        i64 = np.int64
        e_count = len(js)
        counts, floors, sizes, rows_e, sims_e, p_sizes, p_rows, p_score, p_best = laid_end_to_end(nears, pools)
        seg_off = np.concatenate(([0], np.cumsum(counts))).astype(i64)
        per_l = np.array([per_window(int(c)) for c in counts], dtype=i64)
        rec_off = np.concatenate(([0], np.cumsum(sizes))).astype(i64)
        a_seg, a_rows, a_sims = added_windows(changed, js, counts, seg_off[:-1], floors)
        add_off = np.searchsorted(a_seg, np.arange(len(sizes) + 1)).astype(i64)
        p_off = np.concatenate(([0], np.cumsum(p_sizes))).astype(i64)
        q_of = np.arange(e_count, dtype=i64)  # changed_score's column of each list
        size = len(rows_e) + len(a_rows)
        m_off, lasts = np.empty(len(sizes) + 1, i64), np.zeros(len(sizes))
        m_rows, m_sims = np.empty(size, i64), np.empty(size, np.float32)
        tops = int((per_l * counts).sum())
        o_off, o_rows = np.empty(e_count + 1, i64), np.empty(tops, i64)
        o_score, o_best, o_kind = np.empty(tops, np.float32), np.empty(tops, np.float32), np.empty(tops, np.int8)
        status = np.empty(e_count, np.int8)
        segments(seg_off, per_l, floors, rec_off, rows_e, sims_e, add_off, a_rows, a_sims,
                 np.ascontiguousarray(moved, np.bool_), p_off, p_rows, p_score, p_best,
                 np.asarray(changed.cols, i64), q_of,
                 np.ascontiguousarray(changed_score, np.float32), np.ascontiguousarray(changed_best, np.float32),
                 depth, m_off, m_rows, m_sims, lasts, o_off, o_rows, o_score, o_best, o_kind, status,
                 np.zeros(n, i64), np.zeros(n, i64), np.zeros(n, i64))
        self._score_owners(windows, changed, js, o_off, o_rows, o_score, o_best, o_kind, status, p_off, p_score,
                           depth)
        pool_off, pool = np.empty(e_count + 1, i64), np.empty(max(1, depth * e_count), i64)
        owners = o_off[-1]
        keys = value_then_row_keys(o_score[:owners], o_rows[:owners])  # (a list with a NaN score: follow's)
        pick(o_off, keys, o_score, o_kind, status, depth, np.float32(SLACK), pool_off, pool)
        self.fallback = status == BY_FOLLOW
        self.status, self.nears, self.seg_off, self.m_off = status, nears, seg_off, m_off
        self.m_rows, self.m_sims, self.lasts = m_rows, m_sims, lasts
        self.o_off, self.o_rows, self.o_score, self.o_best = o_off, o_rows, o_score, o_best
        self.pool_off, self.pool = pool_off, pool

    @staticmethod
    def _score_owners(windows, changed, js, o_off, o_rows, o_score, o_best, o_kind, status, p_off, p_score, depth):
        """What follow asks WindowScores.pairs for: each list's new owners, then its earlier ones when the pool may
        need them (fewer than `depth` owners sure to be ahead of them); those scored become NEW."""
        owners = o_off[-1]
        wanted = (o_kind[:owners] == NEW) | (o_kind[:owners] == LATER)
        for e in np.unique(np.repeat(np.arange(len(js)), np.diff(o_off))[wanted]):
            a, b = o_off[e], o_off[e + 1]
            kind = o_kind[a:b]
            row = int(changed.rest[js[e]])
            mine = np.flatnonzero(kind == NEW) + a
            if len(mine):
                o_score[mine], o_best[mine] = windows.pairs(*windows.windows_of(row), o_rows[mine])
            waiting = np.flatnonzero(kind == LATER) + a
            if len(waiting):
                lowest = float(p_score[p_off[e]:p_off[e + 1]].min())
                ahead = int((kind == OLD).sum()) + int((o_score[a:b][(kind == CHANGED) | (kind == NEW)] >
                                                        lowest + SLACK).sum())
                if ahead < depth:
                    o_score[waiting], o_best[waiting] = windows.pairs(*windows.windows_of(row), o_rows[waiting])
                    o_kind[waiting] = NEW

    def result(self, e: int):
        """What follow gives list e: (rows, window scores, max-sims, lasts, near record, owners) or None."""
        if self.status[e] != POOL:
            return None
        pick = self.pool[self.pool_off[e]:self.pool_off[e + 1]]
        s0, s1 = self.seg_off[e], self.seg_off[e + 1]
        m0, m1 = self.m_off[s0], self.m_off[s1]
        near = (self.m_rows[m0:m1].astype(np.int32), self.m_sims[m0:m1].copy(),
                np.diff(self.m_off[s0:s1 + 1]).astype(np.int32), self.nears[e][3])
        return (self.o_rows[pick], self.o_score[pick], self.o_best[pick], self.lasts[s0:s1].copy(), near,
                int(self.o_off[e + 1] - self.o_off[e]))


def laid_end_to_end(nears, pools) -> tuple:
    """A block's retrieval records and stored window pools laid end to end: (query windows a list, each segment's
    floor, its recorded windows' count, their rows, their similarities; each pool's size, rows, window scores,
    max-sims)."""
    counts = np.array([len(near[2]) for near in nears], dtype=np.int64)
    floors = np.concatenate([near[3] for near in nears]).astype(np.float64)
    sizes = np.concatenate([near[2] for near in nears]).astype(np.int64)
    rows_e = np.concatenate([near[0] for near in nears]).astype(np.int64)
    sims_e = np.concatenate([near[1] for near in nears]).astype(np.float32)
    p_sizes = np.array([len(p[0]) for p in pools], dtype=np.int64)
    p_rows = np.concatenate([np.asarray(p[0], np.int64) for p in pools])
    p_score = np.concatenate([np.asarray(p[1], np.float32) for p in pools])
    p_best = np.concatenate([np.asarray(p[2], np.float32) for p in pools])
    return counts, floors, sizes, rows_e, sims_e, p_sizes, p_rows, p_score, p_best


def added_windows(changed, js, counts, seg_first, floors):
    """The changed windows above the floors of the block's segments (its lists' query windows, `counts` a list,
    each list's first at `seg_first`; ChangedWindows.added: by the kept window they are near), by segment, nearest
    first (stable: equal similarities in their order): (segment, the changed article's row, similarity)."""
    global_first = np.repeat(changed.firsts[js].astype(np.int64), counts)  # segment -> its stored window
    lookup = np.full(len(changed.best), -1, np.int64)
    lookup[global_first + np.arange(len(floors)) - np.repeat(seg_first, counts)] = np.arange(len(floors))
    at = changed.added_at.astype(np.int64)
    pick = np.flatnonzero(lookup[at] >= 0)
    a_seg = lookup[at[pick]]
    article = np.searchsorted(changed.cfirsts, changed.added_window[pick], side="right") - 1
    a_rows = np.asarray(changed.cols, np.int64)[article]
    a_sims = np.asarray(changed.added_sim[pick], np.float32)
    keep = a_sims > floors[a_seg]
    a_seg, a_rows, a_sims = a_seg[keep], a_rows[keep], a_sims[keep]
    order = np.lexsort((-a_sims, a_seg))
    return a_seg[order], a_rows[order], a_sims[order]

