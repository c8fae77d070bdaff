"""The dense and lexical pools in the learned reach (learned_reach.reached_by_learned_score), from each kept
list's stored pool and the changed articles alone, without the list's full rows.

Both pools are the top `depth` of a row (the dense one: exact FAISS or a partial sort of the cosines; the lexical
one: the posting lists' top-k, documents sharing no term with the query left out). With the statistics frozen,
an unchanged pair keeps its value, so the new pool is the top of (the old members still there, the changed
articles with their new values, and the outsiders, each at most the old pool's lowest value and after every old
member). `follow_top` gives it exactly when no outsider can come in: when the new pool's last is above the old
lowest, or is an old member itself; else (a member removed or changed and not replaced above the old boundary)
the list's own row is computed, as before (`TopSide.membership`).

The ranking also records the POOL_MORE rows that follow each pool (window_record's `more`), and a followed or own
row keeps what follows its new pool: those count as old members in `follow_tops`, so a pool that loses a member
to a change takes the next recorded row instead of its own row being computed, while they last (each follow
keeps only the rows sure to be ahead of every outsider).

A lexical pool the ranking takes from the posting lists' heads (rank.candidates.EXACT_POSTINGS passed) is not the
top of its row: it is never followed, but retrieved again as the ranking retrieves it (head_pools.HeadPools).
"""

from __future__ import annotations

import numpy as np

from ..common.sortkeys import value_then_row_keys
from ..rank.candidates import mention_cuts
from ..rank.ranking import POOL_MORE
from .head_pools import HeadPools

ROW_VALUES = 1 << 22  # values of full rows held at once by TopSide._own_rows (float64: 32 MB)
PAIR_BLOCK = 4096  # pairs whose vectors TopSide.pair_values gathers at once


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


PADDING = np.iinfo(np.int64).max  # a place with no candidate (value -inf), after every candidate


def by_value(rows: np.ndarray, values: np.ndarray) -> tuple:
    """Each row of the (pools x places) matrices in the pools' order, value descending then row ascending, the
    padding places (PADDING, -inf) last in their order: (rows, values, the order taken). The values are float32
    ones (scores and stored pools): one sort of packed keys (common.sortkeys), each place's key distinct (a padding
    place's row is taken as 2^32 - 1 - its distance from the end), so the order is the stable lexsort's, which
    runs instead for anything else (about 2.5x slower)."""
    width = rows.shape[1] if rows.ndim == 2 else 0
    real = rows != PADDING
    if width and not np.isnan(values).any() and bool((rows[real] >= 0).all()) and \
            bool((rows[real] < 2**32 - 1 - width).all()) and \
            np.array_equal(values.astype(np.float32).astype(np.float64), values):
        places = np.arange(width, dtype=np.int64)[None, :]
        keys = value_then_row_keys(values, np.where(real, rows, 2**32 - 1 - width + places))
        order = np.argsort(keys, axis=1)
        if (np.diff(np.take_along_axis(keys, order, 1), axis=1) == 0).any():  # a row twice: the stable order
            order = np.lexsort((rows, -values), axis=1)
    else:
        order = np.lexsort((rows, -values), axis=1)
    return np.take_along_axis(rows, order, 1), np.take_along_axis(values, order, 1), order


def _kth_largest(values: np.ndarray, depth: int) -> float:
    """The depth-th largest of `values` (-inf when there are fewer)."""
    if len(values) < depth:
        return -np.inf
    return float(np.partition(values, len(values) - depth)[len(values) - depth])


def own_pools(values: np.ndarray, qs: np.ndarray, bound: np.ndarray, depth: int, eps: float, positive: bool):
    """The pools of full rows (`values`: len(qs) x n; query qs[i] owns row i; positive: the lexical rows, where a
    document sharing no term is in no pool) against their stored boundaries `bound` (NaN: none), all rows at
    once: (each row's depth-th value, 0 when it has fewer values; sure in the new pool; sure out of it; in the old
    pool; sure out of the old one; each pool as the ranker makes it, its depth best by value then row, or None
    on a tie at its boundary)."""
    if positive:
        values = np.where(values > 0, values, -np.inf)
    b = len(qs)
    width = values.shape[1]  # the depth-th largest is the (width - depth)-th smallest: no negated copy
    if positive:  # mostly -inf (no shared term), on which np.partition degrades: each row's positive values alone
        kth = np.array([_kth_largest(row[row > -np.inf], depth) for row in values]) if b else np.zeros(0)
    else:
        kth = np.partition(values, width - depth, axis=1)[:, width - depth] if b else np.zeros(0)
    finite_kth = np.isfinite(kth)
    with np.errstate(invalid="ignore"):  # -inf - -inf: never near
        above = values > kth[:, None] + eps
        near = np.abs(values - kth[:, None]) <= eps
    tie_free = (above.sum(axis=1) + near.sum(axis=1) == depth) | ~finite_kth
    finite = np.isfinite(values)
    mine = np.where(finite_kth[:, None], above | (near & tie_free[:, None]), finite)  # fewer than depth: all in
    sure_out = np.where(finite_kth[:, None], values < kth[:, None] - eps, ~finite)
    kth = np.where(finite_kth, kth, 0.0)
    was = values > np.where(np.isnan(bound), np.inf, bound)[:, None] + eps
    gone = values < np.where(np.isnan(bound), -np.inf, bound)[:, None] - eps
    # the pools for the next night: with depth of them, exactly depth reach kth (tie_free); else every finite one
    li, cols = np.nonzero(np.where(finite_kth[:, None], values >= kth[:, None], finite) & tie_free[:, None])
    vals = values[li, cols]
    order = np.lexsort((cols, -vals, li))
    li, cols, vals = li[order], cols[order], vals[order]
    first = np.searchsorted(li, np.arange(b + 1))
    pools: list = []
    for i in range(b):
        if not tie_free[i]:
            pools.append(None)
            continue
        stop = min(first[i] + depth, first[i + 1])
        top, v = cols[first[i]:stop], vals[first[i]:stop]
        pools.append((top, np.where(top == qs[i], np.inf, v).astype(np.float32)))
    return kth, mine, sure_out, was, gone, pools


def next_best(values: np.ndarray, pools: list, mine: np.ndarray, depth: int, more: int, positive: bool) -> list:
    """What follows each own row's pool (own_pools' `pools` and `mine`; `values`: the rows as computed): its next
    `more` rows with values (positive ones, for the lexical rows), best first, ties to the lower row, as (rows,
    values); None for a row without a pool or with fewer than `depth` in it (nothing follows)."""
    out: list = []
    for i, pool in enumerate(pools):
        if pool is None or len(pool[0]) < depth:
            out.append(None)
            continue
        row = values[i]
        cand = np.flatnonzero(~mine[i] & (row > 0 if positive else np.isfinite(row)))
        v = row[cand]
        if len(cand) > more:
            kth = np.partition(v, len(v) - more)[len(v) - more]
            cand, v = cand[v >= kth], v[v >= kth]
        order = np.lexsort((cand, -v))[:more]
        out.append((cand[order].astype(np.int64), v[order].astype(np.float32)))
    return out


def follow_tops(olds: list, moved: np.ndarray, cols: np.ndarray, changed: np.ndarray, depth: int, eps: float,
                positive: bool, mores: list | None = None) -> list:
    """`follow_top` of many lists at once: olds[j] the stored pool of list j (or None), changed[j] its values with
    the changed articles `cols`. Each list's new pool as follow_top gives it, with the rows that follow it, as
    (rows, values, more), or None (no stored pool, or follow_top's None). The same candidates, the same total
    order (value, then row: rows are distinct), the same tests, for a block of lists in a few array operations
    instead of a loop.

    mores[j]: the rows recorded after list j's pool (rows, values: window_record's `dense_more`, `lexical_more`;
    None: none), every other row after them. They count as old members: an outsider is now after every unchanged
    one of them and at most the lowest of them, so a pool that loses a member is still followed while they last.
    `more` is then what follows the new pool and is sure to be ahead of every outsider (before the last unchanged
    recorded row, or above the lowest recorded value): at most as many as mores[j] held; None without mores."""
    out: list = [None] * len(olds)
    have = [j for j, old in enumerate(olds) if old is not None]
    if not have:
        return out
    extra = [mores[j] if mores is not None and mores[j] is not None else _NONE for j in have]
    lens = np.array([len(olds[j][0]) for j in have], dtype=np.int64)  # the pools' own lengths
    li, pos, old_rows, old_values, known, lowest = flat_pools([_joined(olds[j], more) for j, more in zip(have, extra)])
    lowest[~np.isfinite(lowest)] = -np.inf  # each list's lowest finite recorded value (-inf: none)
    width, m, b = int(known.max(initial=0)), len(cols), len(have)
    big = PADDING
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
    # how many of each merged row are sure to be ahead of every outsider: up to its last recorded unchanged row,
    # or above its lowest recorded value
    recorded = np.where((order < width) & (values > -np.inf), np.arange(width + m)[None, :] + 1, 0).max(axis=1)
    sure = np.maximum(recorded, (values > lowest[:, None] + eps).sum(axis=1))
    for i in np.flatnonzero((short & positive) | full):
        more = None
        if mores is not None and not short[i]:
            stop = min(int(sure[i]), int(count[i]), depth + len(extra[i][0]))
            more = (rows[i, depth:stop].copy(), values[i, depth:stop].astype(np.float32))
        out[have[i]] = (rows[i, :keep[i]].copy(), values[i, :keep[i]].copy(), more)
    return out


_NONE = (np.zeros(0, np.int64), np.zeros(0, np.float32))


def pool_bound(values: np.ndarray, full: bool) -> float:
    """A pool's boundary for the next night: its lowest finite value when it holds `depth` rows (`full`), else 0
    (every article with a value was in it)."""
    finite = values[np.isfinite(values)]
    return float(finite.min()) if full and len(finite) else 0.0


def keep_more(table: dict, q: int, more) -> None:
    """Record `more` (rows, values) as what follows list q's pool, or nothing (None or empty)."""
    if more is None or not len(more[0]):
        table.pop(q, None)
    else:
        table[q] = (np.asarray(more[0], np.int64), np.asarray(more[1], np.float32))


def _joined(pool: tuple, more: tuple) -> tuple:
    return np.concatenate([np.asarray(pool[0], np.int64), np.asarray(more[0], np.int64)]), \
        np.concatenate([np.asarray(pool[1], np.float32), np.asarray(more[1], np.float32)])


class TopSide:
    """The dense and lexical pools' part of the learned reach for blocks of kept rows (like window_reach's
    WindowSide): old and new membership, exact, from the stored pools, or from the list's own row."""

    def __init__(self, job, frozen, rest: np.ndarray, moved: np.ndarray, depth: int, eps: float, lexical: bool):
        self.job, self.record, self.depth, self.eps = job, frozen.windows, depth, eps
        self.moved, self.cols = moved, np.flatnonzero(moved)
        # lexical pools from the posting lists' heads, now or when stored: made again as the ranking makes them,
        # in the background from here on (the reach asks for them once its other records are read)
        self.heads = HeadPools(job, frozen, rest, ahead=len(self.cols) > 0) if lexical else None
        self.names = ["dense"] + (["lexical"] if lexical else [])
        self.changed = {"dense": job.vectors[rest] @ job.vectors[self.cols].T}
        if lexical:
            tfidf = job.lexical.tfidf
            self.changed["lexical"] = (tfidf[rest] @ tfidf[self.cols].T).toarray()
        self.rows_computed = 0
        self.postings = None

    def rows(self, name: str, qs: np.ndarray) -> np.ndarray:
        """The full rows of the queries qs (len(qs) x n, float64) in one product: the lexical rows exactly as one
        at a time (a sparse product sums each row on its own), the dense ones a matrix product whose sums are
        blocked unlike one row's (within about 1e-6 of it on MDN, far inside the pools' slack `eps`)."""
        self.rows_computed += len(qs)
        if name == "dense":
            return (self.job.vectors[qs] @ self.job.vectors.T).astype(np.float64)
        if self.postings is None:  # the transpose as CSR once: a CSC one is converted again in every product
            self.postings = self.job.lexical.tfidf.T.tocsr()
        return (self.job.lexical.tfidf[qs] @ self.postings).toarray().astype(np.float64)

    def membership(self, at: np.ndarray, r: np.ndarray, old_bounds: dict):
        """For the block r = rest[at]: (sure in new, sure out new, sure in old, sure out old), each len(r) x n,
        and each pool's new boundary per row. The stored pools are followed for the whole block at once
        (`follow_tops`); a list whose pool an outsider may enter gets its own row (`_own_rows`, many at once)."""
        n = len(self.moved)
        in_new, out_new = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        in_old, out_old = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        bounds = {name: np.full(len(r), -np.inf) for name in self.names}
        for name in self.names:
            stored, following = self.record.tops[name], self.record.more[name]
            olds = [stored.get(int(q)) for q in r]
            made = self.heads.of(at) if name == "lexical" else {}  # by position in rest
            made = {j: made[int(p)] for j, p in enumerate(at) if int(p) in made}
            found = follow_tops([None if j in made else old for j, old in enumerate(olds)], self.moved, self.cols,
                                self.changed[name][at], self.depth, self.eps, positive=name == "lexical",
                                mores=[following.get(int(q)) for q in r])
            for j, (rows, values, _, more) in made.items():
                found[j] = (rows, values, more)
            for j in [j for j in made if olds[j] is None]:  # no stored pool: every article may have left it
                out_old[j] = False
            done = [j for j, f in enumerate(found) if f is not None]
            if done:
                new_rows = [found[j][0] for j in done]
                old_rows = [olds[j][0][olds[j][0] >= 0] if olds[j] is not None else _NONE[0] for j in done]
                js = np.repeat(done, [len(x) for x in new_rows])
                cs = np.concatenate(new_rows)
                in_new[js, cs], out_new[js, cs] = True, False
                js = np.repeat(done, [len(x) for x in old_rows])
                cs = np.concatenate(old_rows)
                in_old[js, cs], out_old[js, cs] = True, False
            for j in done:
                rows, values, more = found[j]
                bounds[name][j] = made[j][2] if j in made else pool_bound(values, len(rows) >= self.depth)
                stored[int(r[j])] = (rows, values.astype(np.float32))
                keep_more(following, int(r[j]), more)
            missing = np.array([j for j, f in enumerate(found) if f is None], dtype=np.int64)
            step = max(1, ROW_VALUES // max(n, 1))
            for start in range(0, len(missing), step):
                js = missing[start:start + step]
                bounds[name][js] = self._own_rows(name, r[js], old_bounds[name][js], js, in_new, out_new, in_old,
                                                  out_old)
        return in_new, out_new, in_old, out_old, bounds

    def _own_rows(self, name: str, qs: np.ndarray, bound: np.ndarray, js: np.ndarray, in_new, out_new, in_old,
                  out_old) -> np.ndarray:
        """The pool `name` of rows qs from their own rows (`rows`), as the pools of the full-row reach: their
        membership into rows js of the masks, each pool as the ranker makes it into the record; their new
        boundaries."""
        values = self.rows(name, qs)
        kth, mine, sure_out, was, gone, pools = own_pools(values, qs, bound, self.depth, self.eps,
                                                          name == "lexical")
        stored, following = self.record.tops[name], self.record.more[name]
        mores = next_best(values, pools, mine, self.depth, POOL_MORE, name == "lexical")
        for q, pool, more in zip(qs.tolist(), pools, mores):
            if pool is None:
                stored.pop(q, None)
            else:
                stored[q] = pool
            keep_more(following, q, more)
        out_new[js] &= sure_out
        out_old[js] &= gone
        in_new[js] |= mine
        in_old[js] |= was
        return kth

    def pair_values(self, qs: np.ndarray, cs: np.ndarray) -> dict:
        """Dense and lexical values of each pair (qs[i], cs[i]), PAIR_BLOCK pairs at a time: each pair's sum is
        taken on its own, so the values are those of one product of all the pairs, bit for bit, without gathering
        every pair's vectors at once (a night's fast path scores tens of thousands of pairs)."""
        vectors = self.job.vectors
        parts = [slice(start, start + PAIR_BLOCK) for start in range(0, len(qs), PAIR_BLOCK)] or [slice(0, 0)]
        out = {"dense": np.concatenate([np.einsum("id,id->i", vectors[qs[p]], vectors[cs[p]]) for p in parts])}
        if "lexical" in self.names:
            tfidf = self.job.lexical.tfidf
            out["lexical"] = np.concatenate([np.asarray(tfidf[qs[p]].multiply(tfidf[cs[p]]).sum(axis=1),
                                                        dtype=np.float64).ravel() for p in parts]) \
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
