"""The learned reach's fast path (learned_reach.reached_by_learned_score): the kept lists whose candidate pools
are told exactly from what each list stored and the changed articles' values alone, with no work over the n
articles per list.

A 1% night touches nearly every list's pools (each article sits in about 200 dense, 200 lexical and 200 window
pools), but a changed article deep inside a pool stays there and one far outside stays out: only the pairs with
the changed articles change. For a kept list q, with the statistics frozen (an unchanged pair keeps its value):

* dense, lexical (pool_follow): the stored pool P has no removed row; every changed member's new value is above
  P's old lowest value + eps and every changed non-member's is below it - eps. The unchanged outsiders are at
  most the old lowest (and after every member), so the new pool is P, with the changed members' new values
  (what `pool_follow.follow_top` gives). A lexical pool of fewer than `depth` (every article sharing a term):
  the changed members stay positive and the changed non-members are not. Else the pool is followed from its
  record and the rows recorded after it (`pool_follow.follow_tops`, as the slow path follows it): the list stays
  here when that tells the new pool, whose members may now differ (`_followed_tops`). A lexical pool from the
  posting lists' heads (not an exact top) is retrieved again instead (head_pools.HeadPools, `_made_tops`).
* mention: the cut of q's new mention row (sparse, `sparse_cuts`: the same value `mention_cuts` takes from the
  dense row) equals the stored one. An unchanged article's weight did not change, so it is in the pool (weight
  above the cut) exactly as before; a changed article is in it when its new weight is above the cut.
* window (two-stage ranking, window_reach): the window pool is followed exactly from the list's retrieval
  record (window_batch.follow_many, blocks of lists in array operations, as the slow path follows it): the same
  articles as the stored pool (`_same_window_pool`) or others (`_window_pool`). (A per-list test that the best
  `per` windows of every query window come back unchanged came first until 2026-12-06; it let about one list in
  eight skip the follow and cost more than it saved.)

Then q's new candidates (the union of its pools) are known exactly. Its pairs with the changed articles among them
changed, and so did its pairs with the unchanged articles that entered or left the union (`_with_displaced`,
when a pool's members changed): those are scored exactly (learned_pairs) and tested as the slow path tests them
(L3; a margin reached; LN through `voters_change` with the exact pool membership). Every other list (a pool that
cannot be told without its own row, a changed mention cut, a window pool lost) goes the slow path
(`pool_follow.TopSide`, `window_batch.WindowSide`). Until 2026-12-07 a list whose pools changed members went the
slow path, whose n-wide membership masks cost about 0.5 ms a list on MDN and more as n grows (docs/scale.md).
"""

from __future__ import annotations

import numpy as np

from ..rank.candidates import mention_cut
from . import pool_follow
from .pool_follow import PADDING, by_value, flat_pools, keep_more, pool_bound
from .window_batch import follow_many
from .window_reach import EPS, outsider  # EPS: the slack of the membership tests


def sparse_cuts(both, rows: np.ndarray, depth: int) -> np.ndarray | None:
    """candidates.mention_cuts of the dense rows `rows` of the mention matrix `both` (store.bothways: M + Mᵀ by rows),
    from their stored entries: the (depth+1)-th largest of the row, 0 when it has at most depth entries (None
    when a weight is negative: then the zeros are not the row's smallest)."""
    n = both.shape[1]
    if both.negative():
        return None
    out = np.zeros(len(rows))
    if n <= depth:
        return out
    rows = np.asarray(rows, dtype=np.int64)
    for j in np.flatnonzero(both.most(rows) > depth):  # rows with at most depth entries: 0
        _, data = both.row(int(rows[j]))
        if len(data) > depth:
            out[j] = mention_cut(data, depth)
    return out


def _kept_top(old, moved, col_of, changed_row, depth: int, positive: bool):
    """The dense or lexical pool kept with its members (rows, new values, bound, changed members), or None."""
    if old is None:
        return None
    rows, values = old
    if (rows < 0).any():
        return None
    mine = moved[rows]
    new = changed_row[col_of[rows[mine]]]
    others = changed_row.copy()
    others[col_of[rows[mine]]] = -np.inf
    finite = values[np.isfinite(values)]
    if len(rows) >= depth:
        lowest = float(finite.min()) if len(finite) else np.inf
        if (new <= lowest + EPS).any() or (len(others) and others.max() >= lowest - EPS):
            return None
    elif positive:  # every article sharing a term was in it
        if (new <= EPS).any() or (len(others) and others.max() > 0):
            return None
    else:
        return None
    values = values.astype(np.float64)
    values[mine] = new
    order = np.lexsort((rows, -values))
    rows, values = rows[order], values[order]
    return rows, values.astype(np.float32), pool_bound(values, len(rows) >= depth), rows[moved[rows]]


def _kept_tops(olds: list, moved, col_of, changed: np.ndarray, depth: int, positive: bool, block: int = 1024):
    """`_kept_top` of many lists (olds[j] the stored pool or None, changed[j] the list's values with the changed
    articles), a block of lists at a time in array operations: the same tests, the same pool order (value, then
    row), the same results list by list."""
    out: list = [None] * len(olds)
    for start in range(0, len(olds), block):
        part = range(start, min(len(olds), start + block))
        have = [j for j in part if olds[j] is not None and not (olds[j][0] < 0).any()]  # a removed member: None
        if not have:
            continue
        li, pos, flat_rows, flat_values, lens, lowest = flat_pools([olds[j] for j in have])  # lowest +inf: none
        width, b = int(lens.max()), len(have)
        rows = np.full((b, width), PADDING, dtype=np.int64)
        values = np.full((b, width), -np.inf)
        theirs = np.asarray(changed[have])
        mine = moved[flat_rows]
        new = theirs[li[mine], col_of[flat_rows[mine]]]
        flat_values[mine] = new
        member = np.zeros(theirs.shape, dtype=bool)
        member[li[mine], col_of[flat_rows[mine]]] = True
        others = np.where(member, -np.inf, theirs).max(axis=1) if theirs.shape[1] else np.full(b, -np.inf)
        new_min = np.full(b, np.inf)
        np.minimum.at(new_min, li[mine], new)
        full = lens >= depth
        ok = np.where(full, (new_min > lowest + EPS) & (others < lowest - EPS),
                      (new_min > EPS) & ~(others > 0) if positive else False)
        rows[li, pos], values[li, pos] = flat_rows, flat_values
        rows, values, _ = by_value(rows, values)
        for i in np.flatnonzero(ok):
            r, v = rows[i, :lens[i]].copy(), values[i, :lens[i]]
            out[have[i]] = r, v.astype(np.float32), pool_bound(v, bool(full[i])), r[moved[r]]
    return out


FOLLOW_BLOCK = 256  # lists whose window pools follow_many follows at once (as the slow path's blocks)


def _same_window_pool(old, result, moved, depth: int):
    """The window pool a kept list's record follows to (window_batch.follow_many's `result`: rows, window scores,
    max-sims, lasts, near record, owners) as the fast path keeps it ((rows, scores, max-sims), bound, changed
    members, lasts, near record), when it holds the same articles as the stored pool `old`; else None. A changed
    window among a query window's best `per` that moved (the last window of an edited page, most often) changes
    what the query window retrieves, but when the pool's articles stay the same only the changed members' pairs
    changed, as on the rest of the fast path (the slow path then finds no unchanged article entering or leaving)."""
    if old is None or result is None:
        return None
    rows, score, best, lasts, near, owners = result
    old_rows = np.asarray(old[0])
    if len(old_rows) != len(rows) or (old_rows < 0).any() or \
            not np.array_equal(np.sort(old_rows), np.sort(np.asarray(rows, np.int64))):
        return None
    return _window_pool(result, moved, depth)


def _window_pool(result, moved, depth: int):
    """follow_many's `result` for a list as the fast path keeps it: ((rows, scores, max-sims), bound, changed
    members, lasts, near record); the bound as window_batch.WindowSide.membership takes it."""
    rows, score, best, lasts, near, owners = result
    bound = max(float(score.min()), outsider(lasts)) if owners > depth else outsider(lasts)
    return (rows, score, best), bound, rows[moved[rows]], lasts, near


def _followed_tops(tops, name: str, rest: np.ndarray, positions: list, moved: np.ndarray,
                   block: int = 1024) -> dict:
    """The dense or lexical pools of rows rest[positions] whose members may change, followed from their records
    and what follows them (pool_follow.follow_tops, as TopSide.membership follows them, the same slack):
    position -> (the pool as `_kept_top` gives it, what follows it), for the pools that tells."""
    out: dict = {}
    stored, following = tops.record.tops[name], tops.record.more[name]
    for start in range(0, len(positions), block):
        js = positions[start:start + block]
        qs = [int(q) for q in rest[js]]
        found = pool_follow.follow_tops([stored.get(q) for q in qs], moved, tops.cols, tops.changed[name][js],
                                        tops.depth, tops.eps, positive=name == "lexical",
                                        mores=[following.get(q) for q in qs])
        for j, got in zip(js, found):
            if got is not None:
                rows, values, more = got
                out[j] = (rows, values.astype(np.float32), pool_bound(values, len(rows) >= tops.depth),
                          rows[moved[rows]]), more
    return out


def _made_tops(tops, rest: np.ndarray, positions: set, heads: dict, moved: np.ndarray) -> dict:
    """The lexical pools of rows rest[positions] made again from the heads (head_pools.HeadPools), as
    `_followed_tops` gives a followed one: position -> (rows, values, bound, changed members), what follows it;
    a row with no stored pool is left out (its old members are not known here)."""
    stored = tops.record.tops["lexical"]
    out: dict = {}
    for j in positions:
        if int(rest[j]) in stored:
            rows, values, bound, more = heads[j]
            out[j] = (rows, values, bound, rows[moved[rows]]), more
    return out


def _pool_rows(found: dict) -> np.ndarray:
    """The members of a list's new pools as the fast path keeps them (`found`: dense, lexical, window), end to end."""
    return np.concatenate([np.asarray(found[name][0], np.int64) for name in found if name != "window"] +
                          ([np.asarray(found["window"][0][0], np.int64)] if "window" in found else []))


def _with_displaced(j: int, q: int, pairs: np.ndarray, old_rows: np.ndarray, found: dict, mentions: np.ndarray,
                    moved: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A list whose pools changed members (at position j): its pairs (the changed articles among its new
    candidates) with the unchanged articles entering or leaving its candidates (the union of its pools, as the
    slow path's membership masks), and which of them are among its new candidates. stamps: two rows of n, -1 or
    the position of the list that last marked an article there (its old, its new candidates): no work over n."""
    new_rows = np.concatenate([_pool_rows(found), mentions])
    old_rows = np.concatenate([old_rows, mentions])
    stamps[0, old_rows], stamps[1, new_rows] = j, j
    either = np.concatenate([old_rows, new_rows])
    displaced = either[((stamps[0, either] == j) != (stamps[1, either] == j)) & ~moved[either] & (either != q)]
    out = np.unique(np.concatenate([pairs, displaced])).astype(np.int64)
    return out, stamps[1, out] == j


class Steady:
    """Which kept rows (positions in `rest`) keep every pool's members, their changed members (the pairs to
    score), their new pool records (`commit`) and bounds."""

    def __init__(self, job, frozen, rest: np.ndarray, moved: np.ndarray, depth: int, mention_depth: int,
                 tops, side, used: dict):
        n = len(moved)
        self.rest, self.moved, self.frozen, self.tops, self.side = rest, moved, frozen, tops, side
        col_of = np.full(n, -1, dtype=np.int64)
        col_of[tops.cols] = np.arange(len(tops.cols))
        ok = np.ones(len(rest), dtype=bool)
        self.cuts = None
        both = None
        if used["mention"]:
            both = job.lexical.csr_arrays()["mentions"]  # M + Mᵀ by rows (store.bothways), as the ranking reads it
            self.cuts = sparse_cuts(both, rest, mention_depth)
            if self.cuts is None:
                ok[:] = False
            else:
                ok &= self.cuts == frozen.bounds["mention"][rest]  # NaN: unknown, never equal
        self.both = both
        self.found: dict[int, dict] = {}
        self.why = {int(j): "mention" for j in np.flatnonzero(~ok)}  # position -> the pool that may change
        pairs: dict[int, np.ndarray] = {}  # position -> its changed members (the pairs to score)
        inside: dict[int, np.ndarray] = {}  # position -> which of its pairs are among its new candidates (else all)
        stamps = np.full((2, n), -1, dtype=np.int64)  # _with_displaced's marks
        at = np.flatnonzero(ok)
        heads = tops.heads.of(at) if tops.heads is not None else {}  # lexical pools made again from the heads

        def stored(name: str) -> list:  # the pools `_kept_tops` may keep (not those made again from the heads)
            table = tops.record.tops[name]
            return [None if name == "lexical" and j in heads else table.get(q)
                    for j, q in zip(at.tolist(), rest[at].tolist())]

        kept_tops = {name: dict(zip(at.tolist(), _kept_tops(stored(name), moved, col_of, tops.changed[name][at],
                                                             depth, positive=name == "lexical")))
                     for name in tops.names}  # each list's _kept_top, a block of lists at a time

        def settled(j: int, found: dict, members: list) -> None:
            q = int(rest[j])
            mentions = np.zeros(0, np.int64)
            if both is not None:
                cols, weights = both.row(q)
                mentions = cols[weights > self.cuts[j]].astype(np.int64)
                members.append(mentions[moved[mentions]])
            self.found[j] = found
            pairs[j] = (np.unique(np.concatenate(members)) if members else np.zeros(0, np.int64)).astype(np.int64)
            if j in self.shifted:  # and the unchanged articles entering or leaving its candidates
                pairs[j], inside[j] = _with_displaced(j, q, pairs[j], self._old_rows(q, found), found, mentions, moved,
                                                      stamps)

        # a pool whose members may change: followed from its record and what follows it (pool_follow.follow_tops),
        # as the slow path follows it; its list stays here when that tells the new pool
        moving: dict[str, dict] = {}
        lost: set[int] = set()  # lists with a pool not told: their later pools are not followed
        for name in tops.names:
            wanted = [j for j in at.tolist() if kept_tops[name][j] is None and j not in lost]
            mine = {j for j in wanted if name == "lexical" and j in heads}
            moving[name] = _followed_tops(tops, name, rest, [j for j in wanted if j not in mine], moved)
            moving[name].update(_made_tops(tops, rest, mine, heads, moved))
            lost.update(j for j in wanted if j not in moving[name])
        self.shifted: dict[int, dict] = {}  # position -> {pool name: what follows its new pool} (members changed)
        followed: list[tuple[int, dict, list]] = []  # window pools to follow (window_batch.follow_many)
        for j in at.tolist():
            found, members = {}, []
            for name in tops.names:
                kept = kept_tops[name][j]
                if kept is None:
                    kept, more = moving[name].get(j, (None, None))
                    if kept is None:
                        self.why[j] = name
                        ok[j] = False
                        break
                    self.shifted.setdefault(j, {})[name] = more
                found[name] = kept
                members.append(kept[3])
            else:
                if side is not None:
                    if side.full_row(j):  # its pool is the top of the full row (the slow path's)
                        ok[j] = False
                        self.why[j] = "window"
                    else:
                        followed.append((j, found, members))
                    continue
                settled(j, found, members)
        if followed:  # their window pools followed exactly: kept when they hold the same articles as before
            js = np.array([j for j, _, _ in followed], dtype=np.int64)
            results = [result for start in range(0, len(js), FOLLOW_BLOCK) for result in follow_many(
                side.windows, side.record, side.changed, js[start:start + FOLLOW_BLOCK], moved, side.changed_pairs,
                depth)]
            for (j, found, members), result in zip(followed, results):
                old = side.record.pools.get(int(rest[j]))
                kept = _same_window_pool(old, result, moved, depth)
                if kept is None:  # other articles: its pairs with those entering or leaving are scored too
                    kept = _window_pool(result, moved, depth) if old is not None and result is not None else None
                    if kept is None:
                        ok[j] = False
                        self.why[j] = "window"
                        continue
                    self.shifted.setdefault(j, {})["window"] = None
                found["window"] = kept
                members.append(kept[2])
                settled(j, found, members)
        self.ok = ok
        order = sorted(pairs)  # by position, as the lists come
        self.pairs_j = np.concatenate([np.full(len(pairs[j]), j, dtype=np.int64) for j in order]) if order \
            else np.zeros(0, np.int64)
        self.pairs_c = np.concatenate([pairs[j] for j in order]) if order else np.zeros(0, np.int64)
        self.pairs_in = np.concatenate([inside[j] if j in inside else np.ones(len(pairs[j]), dtype=bool)
                                        for j in order]) if order else np.zeros(0, dtype=bool)

    def _follow_more(self, name: str, positions: np.ndarray, block: int = 1024) -> None:
        """The rows recorded after the kept pools of rows rest[positions] (window_record's `more`): as they are when
        no row of them changed and no changed article outside the pool reaches their lowest value; else followed
        as the slow path follows them (pool_follow.follow_tops: the same pool, what follows it), or dropped."""
        record = self.tops.record
        following = record.more[name]
        js = np.array([j for j in positions.tolist() if int(self.rest[j]) in following], dtype=np.int64)
        if not len(js):
            return
        mores = [following[int(q)] for q in self.rest[js]]
        lowest = np.array([float(v.min()) for _, v in mores])
        moved = np.array([bool((r < 0).any() or self.moved[np.maximum(r, 0)].any()) for r, _ in mores])
        reach = (np.asarray(self.tops.changed[name][js]) >= lowest[:, None] - EPS).sum(axis=1)
        inside = np.array([len(self.found[int(j)][name][3]) for j in js])  # changed members: all above it
        touched = js[moved | (reach > inside)]
        for start in range(0, len(touched), block):
            part = touched[start:start + block]
            qs = self.rest[part]
            found = pool_follow.follow_tops([record.tops[name].get(int(q)) for q in qs], self.moved, self.tops.cols,
                                self.tops.changed[name][part], self.tops.depth, EPS, positive=name == "lexical",
                                mores=[following.get(int(q)) for q in qs])
            for q, got in zip(qs.tolist(), found):
                keep_more(following, q, got[2] if got is not None else None)

    def _old_rows(self, q: int, found: dict) -> np.ndarray:
        """Row q's candidates before the night (its stored pools' members, those not removed), of the pools in
        `found` (the mention pool, whose members stay, aside)."""
        parts = [np.asarray(self.tops.record.tops[name][q][0], np.int64) for name in self.tops.names]
        if "window" in found:
            parts.append(np.asarray(self.side.record.pools[q][0], np.int64))
        rows = np.concatenate(parts)
        return rows[rows >= 0]

    def in_pools(self, j: int) -> np.ndarray:
        """Row rest[j]'s new candidates (its pools' members, exactly), as an n-wide mask."""
        q, found = int(self.rest[j]), self.found[j]
        mask = np.zeros(len(self.moved), dtype=bool)
        mask[_pool_rows(found)] = True
        if self.both is not None:
            cols, weights = self.both.row(q)
            mask[cols[weights > self.cuts[j]]] = True
        return mask

    def commit(self, positions: np.ndarray, new_bounds: dict) -> None:
        """The kept pools of rows rest[positions] into the record, their bounds into `new_bounds` (by position), and
        what follows each pool brought up to date (`_follow_more`)."""
        positions = np.asarray(positions, dtype=np.int64)
        for name in self.tops.names:  # a followed pool's own `more` came with it (follow_tops)
            moving = np.array([name in self.shifted.get(int(j), ()) for j in positions], dtype=bool)
            self._follow_more(name, positions[~moving])
            for j in positions[moving]:
                keep_more(self.tops.record.more[name], int(self.rest[j]), self.shifted[int(j)][name])
        for j in positions:
            q, found = int(self.rest[j]), self.found[int(j)]
            for name in self.tops.names:
                rows, values, bound, _ = found[name]
                self.tops.record.tops[name][q] = (rows, values)
                new_bounds[name][j] = bound
            if "window" in found:
                pool, bound, _, lasts, near = found["window"]
                self.side.record.pools[q], self.side.record.lasts[q], self.side.record.near[q] = pool, lasts, near
                new_bounds["window"][j] = bound
            if self.cuts is not None:
                new_bounds["mention"][j] = self.cuts[j]
