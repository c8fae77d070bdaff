"""The window pool's part of the learned reach (WindowSide), with `window_reach.follow` done for a block of kept
lists at once (`follow_many`).

A 1% night follows the window pools of about 12,000 kept MDN lists; one list at a time that is about 1.7 ms of
small array operations each (a loop over its query windows), 20 s a night. Here the records of a whole block are
laid end to end, one segment per query window, and every step of `follow` is done for all of them together:

* each segment's recorded windows of unchanged articles, best first as recorded, and the changed articles' windows
  above its floor (`ChangedWindows.added`) are merged, by an exact key (the segment, then the similarity's float32
  bits in descending order), which keeps `follow`'s stable order: at equal similarity the recorded window first,
  the recorded ones in their order, the changed ones in theirs;
* a segment with fewer than `per` windows makes its list's pool unknown (None, as `follow`); a segment whose
  `per`-th is not strictly above the next window (or the floor) is left to `follow` itself (its tie rule,
  `_top_owners`), and so is a list whose recorded windows are not best first;
* the owners of each segment's best `per`, scored as `follow` scores them (the stored pool's score of an unchanged
  member, changed_pairs' values for a changed one, `WindowScores.pairs` for the others when `follow` would), and
  the pool the best `depth` by (score desc, row), refused on a tie at its boundary.

So every list gets exactly what `follow` gives it (tests/batch/test_batched_reach.py compares them list by list).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..common.sortkeys import descending_keys
from .changed_pairs import ChangedPairs
from .follow_compiled import CompiledBlock, added_windows, kernels, laid_end_to_end
from .window_reach import SLACK, ChangedWindows, follow, outsider, per_window
from .window_record import EVERYTHING, EXACT, UNKNOWN


TABLE_SPAN = 32  # _distinct marks keys in a table when its span is at most this many times the number of keys


def _distinct(keys: np.ndarray, span: int | None = None) -> np.ndarray:
    """The distinct keys, sorted (np.unique, which is slower here: a sort and a step). With `span` (every key in
    [0, span)) small beside the number of keys, they are marked in a table of span places and read back in order,
    which costs less than the sort (a block's (list, row) keys on MDN: about 4x less)."""
    if span is not None and span <= TABLE_SPAN * len(keys):
        table = np.zeros(span, dtype=bool)
        table[keys] = True
        return np.flatnonzero(table)
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Whether each key is among `sorted_keys` (distinct, sorted)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    return sorted_keys[np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)] == keys


def follow_many(windows, record, changed, js: np.ndarray, moved: np.ndarray, pairs, depth: int) -> list:
    """follow(windows, record, changed, j, moved, score[:, e], best[:, e], depth) for each j of `js` (q =
    changed.rest[j]), in that order; `pairs` (changed_pairs.ChangedPairs) gives the window values of the changed
    articles with a block's rows (`block`: one column e per row, those its added windows bring)."""
    out: list = [None] * len(js)
    total, n = len(windows.codes), len(moved)
    lists, nears, pools = [], [], []
    for k, j in enumerate(js):
        row = int(changed.rest[j])
        near, pool, count = record.near.get(row), record.pools.get(row), int(changed.counts[j])
        if near is None or pool is None or len(near[2]) != count or per_window(count) >= total:
            continue  # follow's None
        lists.append(k)
        nears.append(near)
        pools.append(pool)
    if not lists:
        return out
    compiled = kernels()  # the compiled loops where the process runs them (the batch), else the NumPy steps
    block = _Block if compiled is None else partial(CompiledBlock, compiled)
    score, best = pairs.block(np.asarray(changed.rest, np.int64)[js[lists]])  # column e: list e's
    one = block(windows, changed, js[lists], nears, pools, moved, score, best, depth, n)
    for e, k in enumerate(lists):
        if one.fallback[e]:
            out[k] = follow(windows, record, changed, int(js[k]), moved, score[:, e], best[:, e], depth)
        else:
            out[k] = one.result(e)
    return out


class _Block:
    """The merged records of a block of lists (e: position among them) and what follow gives each."""

    def __init__(self, windows, changed, js, nears, pools, moved, changed_score, changed_best, depth, n):
        """changed_score, changed_best: the changed articles' window values with list e in column e."""
        e_count = len(js)
        self.depth = depth
        counts, floors, sizes, rows_e, sims_e, p_sizes, p_rows, p_score, p_best = laid_end_to_end(nears, pools)
        seg_list = np.repeat(np.arange(e_count), counts)  # segment -> list
        seg_first = np.cumsum(counts) - counts
        per = np.array([per_window(int(c)) for c in counts], dtype=np.int64)[seg_list]
        seg_e = np.repeat(np.arange(len(sizes)), sizes)
        fallback = np.zeros(e_count, dtype=bool)
        # the recorded windows best first in each segment (else follow's own sort decides)
        step = (np.diff(seg_e) == 0) & (sims_e[1:] > sims_e[:-1])
        fallback[seg_list[seg_e[1:][step]]] = True
        # the old best `per` of each segment (their owners: "before" in follow)
        place_e = np.arange(len(seg_e)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        before = place_e < per[seg_e]
        self.before = _distinct(seg_list[seg_e[before]] * (n + 2) + rows_e[before] + 2, e_count * (n + 2))
        stay = (rows_e >= 0) & ~moved[np.maximum(rows_e, 0)]
        stay &= sims_e > floors[seg_e]
        a_seg, a_rows, a_sims = added_windows(changed, js, counts, seg_first, floors)
        s_seg, s_rows, s_sims = seg_e[stay], rows_e[stay], sims_e[stay]
        good = ~fallback[seg_list[s_seg]]
        s_seg, s_rows, s_sims = s_seg[good], s_rows[good], s_sims[good]
        good = ~fallback[seg_list[a_seg]]
        a_seg, a_rows, a_sims = a_seg[good], a_rows[good], a_sims[good]
        # merge: a changed window after every recorded one of its segment at least as near (stable)
        ins = np.searchsorted(descending_keys(s_seg, s_sims), descending_keys(a_seg, a_sims), side="right")
        size = len(s_seg) + len(a_seg)
        m_seg, m_rows, m_sims = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.float32)
        a_pos = ins + np.arange(len(a_seg))
        s_pos = np.arange(len(s_seg)) + np.cumsum(np.bincount(ins, minlength=len(s_seg) + 1))[:len(s_seg)]  # ins <= i
        for target, s_part, a_part in ((m_seg, s_seg, a_seg), (m_rows, s_rows, a_rows), (m_sims, s_sims, a_sims)):
            target[s_pos], target[a_pos] = s_part, a_part
        m_count = np.bincount(m_seg, minlength=len(sizes))
        m_first = np.cumsum(m_count) - m_count
        decided = ~fallback[seg_list]  # segments of the lists merged here
        short = (m_count < per) & decided
        unknown = np.zeros(e_count, dtype=bool)
        unknown[seg_list[short]] = True  # a margin run out: follow's None
        at_per = np.minimum(m_first + per - 1, max(size - 1, 0))
        nxt = np.where(m_count > per, m_sims[np.minimum(at_per + 1, max(size - 1, 0))].astype(np.float64), floors)
        lasts = m_sims[at_per] if size else np.zeros(len(sizes), np.float32)
        tied = decided & ~short & ~(lasts.astype(np.float64) > nxt)
        fallback[seg_list[tied]] = True  # _top_owners' tie rule: follow itself
        fallback &= ~unknown
        self.fallback, self.unknown = fallback, unknown
        self.seg_list, self.counts, self.floors, self.lasts = seg_list, counts, floors, lasts.astype(np.float64)
        self.m_seg, self.m_rows, self.m_sims, self.m_count = m_seg, m_rows, m_sims, m_count
        self.seg_first = seg_first
        # the owners of each segment's best `per`, per list (sorted rows)
        place = np.arange(size) - m_first[m_seg]
        top = place < per[m_seg]
        keys = _distinct(seg_list[m_seg[top]] * (n + 2) + m_rows[top] + 2, e_count * (n + 2))
        o_list, o_rows = keys // (n + 2), keys % (n + 2) - 2
        live = ~(fallback | unknown)[o_list]
        o_list, o_rows, keys = o_list[live], o_rows[live], keys[live]
        self.o_total = np.bincount(o_list, minlength=e_count)
        score, best = np.zeros(len(keys), np.float32), np.zeros(len(keys), np.float32)
        # the stored pool's members
        p_list = np.repeat(np.arange(e_count), p_sizes)
        p_keys = p_list * (n + 2) + p_rows + 2
        valid = p_rows >= 0
        by = np.flatnonzero(valid)[np.argsort(p_keys[valid], kind="stable")]
        where = np.minimum(np.searchsorted(p_keys[by], keys), max(len(by) - 1, 0))
        in_old = (p_keys[by][where] == keys) if len(by) else np.zeros(len(keys), dtype=bool)
        is_changed = moved[o_rows]
        old = in_old & ~is_changed
        score[old], best[old] = p_score[by[where[old]]], p_best[by[where[old]]]
        col = np.searchsorted(changed.cols, o_rows[is_changed])
        score[is_changed] = changed_score[col, o_list[is_changed]]
        best[is_changed] = changed_best[col, o_list[is_changed]]
        was_top = _member(keys, self.before)
        p_lowest = np.full(e_count, np.inf, np.float32)
        np.minimum.at(p_lowest, p_list, p_score)
        full_pool = (p_sizes >= depth)[o_list]
        later = ~old & ~is_changed & was_top & full_pool
        new_owner = ~old & ~is_changed & ~later
        # what follow asks WindowScores.pairs for: the new owners, then the earlier ones when the pool may need them
        o_first = np.searchsorted(o_list, np.arange(e_count + 1))
        for e in _distinct(o_list[new_owner | later], e_count):
            a, b = o_first[e], o_first[e + 1]
            row = int(changed.rest[js[e]])
            mine = np.flatnonzero(new_owner[a:b]) + a
            if len(mine):
                score[mine], best[mine] = windows.pairs(*windows.windows_of(row), o_rows[mine])
            waiting = np.flatnonzero(later[a:b]) + a
            if len(waiting):
                ahead = int(old[a:b].sum()) + int((score[a:b][(is_changed | new_owner)[a:b]] >
                                                   float(p_lowest[e]) + SLACK).sum())
                if ahead < depth:
                    score[waiting], best[waiting] = windows.pairs(*windows.windows_of(row), o_rows[waiting])
                    later[waiting] = False
        scored = np.flatnonzero(~later)
        if np.isnan(score[scored]).any():
            order = scored[np.lexsort((o_rows[scored], -score[scored], o_list[scored]))]
        else:  # `keys` are sorted by (list, row): a stable sort by (list, score desc) keeps the rows in order
            order = scored[np.argsort(descending_keys(o_list[scored], score[scored]), kind="stable")]
        s_list = o_list[order]
        s_count = np.bincount(s_list, minlength=e_count)
        s_first = np.cumsum(s_count) - s_count
        rank = np.arange(len(order)) - s_first[s_list]
        boundary = np.flatnonzero(s_count > depth)
        if len(boundary):
            last, nxt_ = score[order[s_first[boundary] + depth - 1]], score[order[s_first[boundary] + depth]]
            self.unknown[boundary[last <= nxt_ + SLACK]] = True  # a tie at the pool's boundary
        self.pool = order[rank < depth]
        self.pool_first = np.searchsorted(o_list[self.pool], np.arange(e_count + 1))
        self.o_rows, self.score, self.best = o_rows, score, best
        self.nears = nears

    def result(self, e: int):
        """What follow gives list e: (rows, window scores, max-sims, lasts, near record, owners) or None."""
        if self.unknown[e]:
            return None
        pick = self.pool[self.pool_first[e]:self.pool_first[e + 1]]
        s0, s1 = self.seg_first[e], self.seg_first[e] + self.counts[e]
        m0, m1 = (np.searchsorted(self.m_seg, [s0, s1]) if len(self.m_seg) else (0, 0))
        near = (self.m_rows[m0:m1].astype(np.int32), self.m_sims[m0:m1].copy(),
                self.m_count[s0:s1].astype(np.int32), self.nears[e][3])
        return (self.o_rows[pick], self.score[pick], self.best[pick], self.lasts[s0:s1].copy(), near,
                int(self.o_total[e]))


class WindowSide:
    """The window pool's part of the learned reach (learned_reach.reached_by_learned_score) for blocks of kept
    rows: its old and new membership, exact, from the stored pools (`follow`), or from full window rows where
    every stored window is retrieved (a small corpus) or the ranking is exact; and the window values of single
    pairs."""

    def __init__(self, ranker, frozen, rest: np.ndarray, moved: np.ndarray, depth: int, eps: float):
        self.windows, self.record, self.depth, self.eps = ranker.windows, frozen.windows, depth, eps
        self.rest, self.moved = rest, moved
        self.cols = np.flatnonzero(moved)
        self.changed = ChangedWindows(self.windows, rest, self.cols, record=self.record,
                                      ann=ranker.window_stage().ann)
        n = len(moved)
        self.changed_pairs = ChangedPairs(self.windows, self.cols, self.changed)
        self.col_of = np.full(n, -1, dtype=np.int64)
        self.col_of[self.cols] = np.arange(len(self.cols))
        self.total = len(self.windows.codes)

    def full_row(self, j: int) -> bool:
        lasts = self.record.lasts.get(int(self.rest[j]), UNKNOWN)
        return isinstance(lasts, int) and (lasts == EXACT or (lasts == EVERYTHING and per_window(
            self.changed.counts[j]) >= self.total))

    def membership(self, at: np.ndarray, r: np.ndarray, old_bound: np.ndarray):
        """For the block r = rest[at]: (sure in new, sure out new, sure in old, sure out old: each
        len(r) x n), the new window bound of each row and the rows whose new pool cannot be told (ranked again)."""
        n = len(self.moved)
        in_new, out_new = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        in_old, out_old = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        bound, lost = np.full(len(r), -np.inf), np.zeros(len(r), dtype=bool)
        full = np.array([self.full_row(at[j]) for j in range(len(r))], dtype=bool)
        if full.any():  # the pool is the top of the row: as the pools of the dense and lexical rows
            values = self.windows.rows(r[full])
            kth = -np.partition(-values, self.depth - 1, axis=1)[:, self.depth - 1]
            above, near = values > kth[:, None] + self.eps, np.abs(values - kth[:, None]) <= self.eps
            no_tie = above.sum(axis=1) + near.sum(axis=1) == self.depth
            in_new[full], out_new[full] = above | (near & no_tie[:, None]), values < kth[:, None] - self.eps
            old = old_bound[full][:, None]
            in_old[full] = values > np.nan_to_num(old, nan=np.inf) + self.eps
            out_old[full] = values < np.nan_to_num(old, nan=-np.inf) - self.eps
            bound[full] = kth
        todo = np.flatnonzero(~full)
        results = follow_many(self.windows, self.record, self.changed, at[todo], self.moved, self.changed_pairs,
                              self.depth)
        for j, found in zip(todo, results):
            q = int(r[j])
            if found is None:
                lost[j] = True
                continue
            rows, score, best, lasts, near, owners = found
            old_rows = self.record.pools[q][0]
            in_old[j, old_rows[old_rows >= 0]] = True
            out_old[j] = ~in_old[j]
            in_new[j, rows] = True
            out_new[j] = ~in_new[j]
            bound[j] = max(float(score.min()), outsider(lasts)) if owners > self.depth else outsider(lasts)
            self.record.lasts[q], self.record.pools[q], self.record.near[q] = lasts, (rows, score, best), near
        return in_new, out_new, in_old, out_old, bound, lost

    def pair_values(self, qs: np.ndarray, cs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window score, max-sim) of each pair (qs[i], cs[i]): a changed candidate's with it as the query, as its
        row has them (changed_pairs), an unchanged one's as the ranker computes it (WindowScores.pairs)."""
        score, best = np.zeros(len(qs), np.float32), np.zeros(len(qs), np.float32)
        changed = self.col_of[cs] >= 0
        score[changed], best[changed] = self.changed_pairs.values(qs[changed], self.col_of[cs[changed]])
        others = np.flatnonzero(~changed)
        order = others[np.argsort(qs[others], kind="stable")]
        cuts = np.flatnonzero(np.diff(qs[order])) + 1
        for group in np.split(order, cuts) if len(order) else ():
            score[group], best[group] = self.windows.pairs(*self.windows.windows_of(int(qs[group[0]])), cs[group])
        return score, best
