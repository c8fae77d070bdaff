"""The dense and lexical pools in the learned reach (learned_reach.reached_by_learned_score), from each kept
list's stored pool and the changed articles alone, without the list's full rows.

Both pools are the top `depth` of a row (the dense one: exact FAISS or a partial sort of the cosines; the lexical
one: the posting lists' top-k, documents sharing no term with the query left out). With the statistics frozen,
an unchanged pair keeps its value, so the new pool is the top of (the old members still there, the changed
articles with their new values, and the outsiders, each at most the old pool's lowest value and after every old
member). `follow_top` gives it exactly when no outsider can come in: when the new pool's last is above the old
lowest, or is an old member itself; else (a member removed or changed and not replaced above the old boundary)
the list's own row is computed, as before (`TopSide.membership`).
"""

from __future__ import annotations

import numpy as np

from ..rank.candidates import mention_cuts


def follow_top(old: tuple, moved: np.ndarray, changed_rows: np.ndarray, changed_values: np.ndarray, depth: int,
               eps: float, positive: bool):
    """The new pool (rows, values) from the stored one (`old`: rows, values; removed rows -2; the query itself
    +inf), or None when an outsider may come in or the order at the boundary is not sure. positive: only rows
    with a positive value are in a pool (the lexical one; an outsider then shares no term, value 0)."""
    rows, values = old
    kept = (rows >= 0) & ~moved[np.maximum(rows, 0)]
    s_rows = np.concatenate([rows[kept], changed_rows])
    s_values = np.concatenate([values[kept], changed_values]).astype(np.float64)
    is_old = np.arange(len(s_rows)) < int(kept.sum())
    if positive:
        keep = s_values > 0
        s_rows, s_values, is_old = s_rows[keep], s_values[keep], is_old[keep]
    order = np.lexsort((s_rows, -s_values))
    if len(rows) < depth:  # every article with a value was in the pool: no outsider but those valued 0
        return (s_rows[order[:depth]], s_values[order[:depth]]) if positive else None
    if len(order) < depth:
        return None
    top = order[:depth]
    last = s_values[top[-1]]
    if len(order) > depth and s_values[order[depth]] >= last - eps:
        return None  # the order at the boundary is not sure
    finite = values[np.isfinite(values)]
    lowest = float(finite.min()) if len(finite) else -np.inf
    if last > lowest + eps or is_old[top[-1]]:  # above every outsider, or an old member: ahead of them
        return s_rows[top], s_values[top]
    return None


def flat_pools(pools: list) -> tuple:
    """Stored pools (rows, values), none of them None, end to end: (each entry's pool, its place in the pool,
    rows int64, values float64, each pool's length, each pool's lowest finite value: +inf when it has none)."""
    lens = np.array([len(p[0]) for p in pools], dtype=np.int64)
    li = np.repeat(np.arange(len(pools)), lens)
    pos = np.arange(len(li)) - np.repeat(np.cumsum(lens) - lens, lens)
    rows = np.concatenate([np.asarray(p[0], np.int64) for p in pools])
    values = np.concatenate([np.asarray(p[1]) for p in pools]).astype(np.float64)
    finite = np.isfinite(values)
    lowest = np.full(len(pools), np.inf)
    np.minimum.at(lowest, li[finite], values[finite])
    return li, pos, rows, values, lens, lowest


def by_value(rows: np.ndarray, values: np.ndarray) -> tuple:
    """Each row of the (pools x places) matrices in the pools' order, value descending then row ascending:
    (rows, values, the order taken)."""
    order = np.lexsort((rows, -values), axis=1)
    return np.take_along_axis(rows, order, 1), np.take_along_axis(values, order, 1), order


def follow_tops(olds: list, moved: np.ndarray, cols: np.ndarray, changed: np.ndarray, depth: int, eps: float,
                positive: bool) -> list:
    """`follow_top` of many lists at once: olds[j] the stored pool of list j (or None), changed[j] its values with
    the changed articles `cols`. Each list's new pool (rows, values) as follow_top gives it, or None (no stored
    pool, or follow_top's None). The same candidates, the same total order (value, then row: rows are distinct),
    the same tests, for a block of lists in a few array operations instead of a loop."""
    out: list = [None] * len(olds)
    have = [j for j, old in enumerate(olds) if old is not None]
    if not have:
        return out
    li, pos, old_rows, old_values, lens, lowest = flat_pools([olds[j] for j in have])
    lowest[~np.isfinite(lowest)] = -np.inf  # each old pool's lowest finite value (-inf: none)
    width, m, b = int(lens.max(initial=0)), len(cols), len(have)
    big = np.iinfo(np.int64).max
    rows = np.full((b, width + m), big, dtype=np.int64)  # padding: value -inf, after every candidate
    values = np.full((b, width + m), -np.inf)
    valid = (old_rows >= 0) & ~moved[np.maximum(old_rows, 0)]
    if positive:
        valid &= old_values > 0
    rows[li[valid], pos[valid]], values[li[valid], pos[valid]] = old_rows[valid], old_values[valid]
    theirs = np.asarray(changed, np.float64)[have]
    ok = theirs > 0 if positive else np.ones(theirs.shape, dtype=bool)
    rows[:, width:] = np.where(ok, np.asarray(cols, np.int64)[None, :], big)
    values[:, width:] = np.where(ok, theirs, -np.inf)
    count = np.bincount(li[valid], minlength=b) + ok.sum(axis=1)
    rows, values, order = by_value(rows, values)
    short = lens < depth
    keep = np.minimum(count, depth)
    if width + m > depth:
        tied = (count > depth) & (values[:, min(depth, width + m - 1)] >= values[:, depth - 1] - eps)
    else:
        tied = np.zeros(b, dtype=bool)
    last = values[:, min(depth, width + m) - 1]
    last_old = order[:, min(depth, width + m) - 1] < width
    full = ~short & (count >= depth) & ~tied & ((last > lowest + eps) | last_old)
    for i in np.flatnonzero((short & positive) | full):
        out[have[i]] = (rows[i, :keep[i]].copy(), values[i, :keep[i]].copy())
    return out


class TopSide:
    """The dense and lexical pools' part of the learned reach for blocks of kept rows (like window_reach's
    WindowSide): old and new membership, exact, from the stored pools, or from the list's own row."""

    def __init__(self, job, frozen, rest: np.ndarray, moved: np.ndarray, depth: int, eps: float, lexical: bool):
        self.job, self.record, self.depth, self.eps = job, frozen.windows, depth, eps
        self.moved, self.cols = moved, np.flatnonzero(moved)
        self.names = ["dense"] + (["lexical"] if lexical else [])
        self.changed = {"dense": job.vectors[rest] @ job.vectors[self.cols].T}
        if lexical:
            tfidf = job.lexical.tfidf
            self.changed["lexical"] = (tfidf[rest] @ tfidf[self.cols].T).toarray()
        self.rows_computed = 0
        self.postings = None

    def row(self, name: str, q: int) -> np.ndarray:
        self.rows_computed += 1
        if name == "dense":
            return self.job.vectors[q] @ self.job.vectors.T
        if self.postings is None:  # the transpose as CSR once: a CSC one is converted again in every product
            self.postings = self.job.lexical.tfidf.T.tocsr()
        return (self.job.lexical.tfidf[q] @ self.postings).toarray()[0]

    def membership(self, at: np.ndarray, r: np.ndarray, old_bounds: dict):
        """For the block r = rest[at]: (sure in new, sure out new, sure in old, sure out old), each len(r) x n,
        and each pool's new boundary per row. The stored pools are followed for the whole block at once
        (`follow_tops`); a list whose pool an outsider may enter gets its own row (`_own_row`)."""
        n = len(self.moved)
        in_new, out_new = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        in_old, out_old = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        bounds = {name: np.full(len(r), -np.inf) for name in self.names}
        for name in self.names:
            stored = self.record.tops[name]
            olds = [stored.get(int(q)) for q in r]
            found = follow_tops(olds, self.moved, self.cols, self.changed[name][at], self.depth, self.eps,
                                positive=name == "lexical")
            done = [j for j, f in enumerate(found) if f is not None]
            if done:
                new_rows = [found[j][0] for j in done]
                old_rows = [olds[j][0][olds[j][0] >= 0] for j in done]
                js = np.repeat(done, [len(x) for x in new_rows])
                cs = np.concatenate(new_rows)
                in_new[js, cs], out_new[js, cs] = True, False
                js = np.repeat(done, [len(x) for x in old_rows])
                cs = np.concatenate(old_rows)
                in_old[js, cs], out_old[js, cs] = True, False
            for j in done:
                rows, values = found[j]
                finite = values[np.isfinite(values)]
                bounds[name][j] = float(finite.min()) if len(rows) >= self.depth and len(finite) else 0.0
                stored[int(r[j])] = (rows, values.astype(np.float32))
            for j in (j for j, f in enumerate(found) if f is None):
                bounds[name][j] = self._own_row(name, int(r[j]), old_bounds[name][j], j, in_new, out_new, in_old,
                                                out_old)
        return in_new, out_new, in_old, out_old, bounds

    def _own_row(self, name: str, q: int, bound: float, j: int, in_new, out_new, in_old, out_old) -> float:
        """The pool `name` of row q from its own row, as the pools of the full-row reach: its membership into
        row j of the masks, the pool as the ranker makes it into the record; its new boundary."""
        n, stored = len(self.moved), self.record.tops[name]
        values = self.row(name, q).astype(np.float64)
        if name == "lexical":  # a document sharing no term is in no lexical pool
            values = np.where(values > 0, values, -np.inf)
        kth = -np.partition(-values, self.depth - 1)[self.depth - 1]
        if np.isfinite(kth):
            above, near = values > kth + self.eps, np.abs(values - kth) <= self.eps
            tie_free = above.sum() + near.sum() == self.depth
            mine, sure_out = above | (near & tie_free), values < kth - self.eps
        else:  # fewer than depth with a value: every one is in
            tie_free, mine, kth = True, np.isfinite(values), 0.0
            sure_out = ~mine
        was = values > (np.inf if np.isnan(bound) else bound) + self.eps
        out_new[j] &= sure_out
        out_old[j] &= values < (-np.inf if np.isnan(bound) else bound) - self.eps
        if tie_free:  # the pool as the ranker makes it, for the next night: its depth best (value, then row)
            finite = np.isfinite(values)  # with depth of them, exactly depth reach kth (tie_free)
            top = np.flatnonzero(values >= kth) if finite.sum() >= self.depth else np.flatnonzero(finite)
            top = top[np.lexsort((top, -values[top]))][:self.depth]
            top = top[np.isfinite(values[top])]
            stored[q] = (top, np.where(top == q, np.inf, values[top]).astype(np.float32))
        else:
            stored.pop(q, None)
        in_new[j] |= mine
        in_old[j] |= was
        return kth

    def pair_values(self, qs: np.ndarray, cs: np.ndarray) -> dict:
        """Dense and lexical values of each pair (qs[i], cs[i])."""
        out = {"dense": np.einsum("id,id->i", self.job.vectors[qs], self.job.vectors[cs])}
        if "lexical" in self.names:
            tfidf = self.job.lexical.tfidf
            out["lexical"] = np.asarray(tfidf[qs].multiply(tfidf[cs]).sum(axis=1), dtype=np.float64).ravel() \
                if len(qs) else np.zeros(0)
        return out


def mention_membership(job, frozen, r: np.ndarray, mentioned: int, n: int, used: bool, cuts=None):
    """The mention pool of rows r, old and new: the row's entries above its cut (an unchanged entry keeps its
    value). (sure in new, sure out of new, sure in old, sure out of old, each len(r) x n; the new cuts, or None
    when the ranking uses no mentions). `cuts`: the new cuts when known (steady_pools.sparse_cuts: the values
    `mention_cuts` takes from the dense rows, without a partition of each)."""
    if not used:
        none = np.zeros((len(r), n), dtype=bool)
        return none, ~none, none.copy(), ~none, None
    weights = job.lexical.mention_rows(r)
    new_cut = mention_cuts(weights, mentioned) if cuts is None else cuts
    old_cut = frozen.bounds["mention"][r][:, None]  # NaN: no record, neither side is sure
    in_new = weights > new_cut[:, None]
    return in_new, ~in_new, weights > old_cut, weights <= old_cut, new_cut
