"""The window pool in the nightly reach under the two-stage ranking (recommender.rank.candidates).

There the window pool of a query is not the top of a full row: each query window retrieves its `per` nearest stored
windows; the owners of those windows are scored, and the best `depth` of them form the pool. An article owning
none of them scores at most the outsider bound, (mean_i b_i + max_i b_i) / 2 with b_i the last similarity query
window i found. A change moves that bound: a new or changed article's window that comes nearer to query window i
than b_i takes a place in its list and pushes the last one out (b_i rises, at most to that window's similarity);
a removed window lets the next one in (b_i falls). So, per kept list:

* `record`: the ranker gives each list's b_i (None when every stored window was found) and its window pool
  (rows, window scores, max-sims), stored in the lists state;
* `ChangedWindows`: one product of the kept lists' windows with the new and changed articles' windows gives
  s_i, the best similarity of query window i with them; b_i⁺ = max(b_i, s_i) bounds the new b_i, so the outsider
  bound computed from b_i⁺ bounds every article outside the new window pool that owns no retrieved window
  (incremental.reached_by_fixed_score, R5), and b_i⁺ is what the list keeps for the next night;
* `follow` (learned ranking): the new window pool of a kept list exactly, from its stored pool, when that can be
  told without retrieving again (else the list is ranked again): see its docstring.
"""

from __future__ import annotations

import numpy as np

from ..rank.windows import BLOCK_WINDOWS

EXACT, UNKNOWN, EVERYTHING = -2, -1, 0  # lasts codes: a full row's top (retrieval "exact"), unknown, all found
SLACK = 1e-5  # float slack of similarity comparisons (the same products, blocked differently)
EPS = 1e-4  # float slack of the reach tests (scores are float32 z-mixes): incremental's and learned_reach's


def outsider(lasts: np.ndarray) -> float:
    """candidates.WindowStage._outsider_bound from the lasts (+inf when one is unknown)."""
    return float((lasts.mean() + lasts.max()) / 2) if len(lasts) else -np.inf


def per_window(count: int) -> int:
    from ..rank import candidates

    return max(candidates.MIN_PER_WINDOW, candidates.WINDOW_NEIGHBOURS // max(1, count))


FIELDS = {"window": (("rows", np.int32), ("score", np.float32), ("best", np.float32)),  # window pool
          "dense": (("rows", np.int32), ("values", np.float32)),  # dense and lexical pools (pool_follow)
          "lexical": (("rows", np.int32), ("values", np.float32))}


class Record:
    """Per row: its lasts (an array, or EXACT / UNKNOWN / EVERYTHING) and its pools (`tables`: the window pool's
    rows, window scores and max-sims; the dense and lexical pools' rows and values), as the ranker left them or
    a kept list carries them over. Pool rows are in the current numbering (removed: -2)."""

    def __init__(self, n: int):
        self.lasts: dict[int, object] = {}
        self.tables: dict[str, dict[int, tuple]] = {name: {} for name in FIELDS}
        self.pools, self.tops = self.tables["window"], {k: self.tables[k] for k in ("dense", "lexical")}
        self.n = n

    def record(self, row: int, lasts, pool) -> None:
        self.lasts[row] = EXACT if isinstance(lasts, str) else (EVERYTHING if lasts is None else
                                                                  np.asarray(lasts, np.float64).copy())
        if pool is None:
            self.pools.pop(row, None)
        else:
            rows, owners, score, best = pool
            at = np.searchsorted(owners, rows)
            self.pools[row] = (np.asarray(rows, np.int64), score[at].astype(np.float32), best[at].astype(np.float32))

    def record_tops(self, row: int, tops) -> None:
        """The dense and lexical pools of a list the two-stage ranking ranked (None: not known)."""
        for mine in self.tops.values():
            mine.pop(row, None)
        if tops is None:
            return
        cand, raw, pools = tops
        for name, rows in pools.items():
            if rows is None or name not in raw:
                continue
            rows = np.asarray(rows, np.int64)
            rows = rows[rows >= 0]
            at = np.minimum(np.searchsorted(cand, rows), max(len(cand) - 1, 0))
            found = (cand[at] == rows) if len(cand) else np.zeros(len(rows), dtype=bool)
            values = np.where(found, raw[name][at] if len(cand) else 0.0, np.inf)  # the query itself: first
            self.tops[name][row] = (rows, values.astype(np.float32))

    def arrays(self, keep_pools: bool) -> dict:
        """The state's arrays (np.savez): the lasts always, the pools for a learned ranking."""
        codes = np.full(self.n, UNKNOWN, dtype=np.int64)
        values = []
        for row in range(self.n):
            lasts = self.lasts.get(row, UNKNOWN)
            if isinstance(lasts, np.ndarray):
                codes[row] = len(lasts)
                values.append(lasts)
            else:
                codes[row] = lasts
        out = {"wlast_len": codes, "wlast": np.concatenate(values) if values else np.zeros(0)}
        for name, table in self.tables.items() if keep_pools else ():
            out[f"pool_{name}_len"] = np.array([len(table[r][0]) if r in table else -1 for r in range(self.n)])
            parts = [table[r] for r in range(self.n) if r in table]
            for k, (field, kind) in enumerate(FIELDS[name]):
                out[f"pool_{name}_{field}"] = np.concatenate([p[k] for p in parts]).astype(kind) if parts else \
                    np.zeros(0, kind)
        return out

    @classmethod
    def load(cls, state: dict, prev: np.ndarray, same: np.ndarray) -> "Record":
        """The records of the kept rows (`same`, their old rows `prev`); pool rows renumbered (removed: -2)."""
        out = cls(len(prev))
        kept = np.flatnonzero(same)
        if "wlast_len" not in state:
            return out
        codes = state["wlast_len"]
        starts = np.concatenate(([0], np.cumsum(np.maximum(codes, 0))))
        for row in kept:
            p = prev[row]
            out.lasts[int(row)] = state["wlast"][starts[p]:starts[p + 1]].copy() if codes[p] > 0 else int(codes[p])
        renumber = np.full(len(codes), -2, dtype=np.int64)
        renumber[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
        for name, table in out.tables.items():
            if f"pool_{name}_len" not in state:
                continue
            sizes = state[f"pool_{name}_len"]
            starts = np.concatenate(([0], np.cumsum(np.maximum(sizes, 0))))
            columns = [state[f"pool_{name}_{field}"] for field, _ in FIELDS[name]]
            for row in kept:
                p = prev[row]
                if sizes[p] >= 0:
                    a, b = starts[p], starts[p + 1]
                    table[int(row)] = (renumber[columns[0][a:b].astype(np.int64)],
                                       *(c[a:b].astype(np.float32) for c in columns[1:]))
        return out


class ChangedWindows:
    """For the kept rows `rest`: s_i of each of their windows (the best similarity with the windows of the new
    and changed rows `cols`) and, per changed article, the best similarity of each window with it."""

    def __init__(self, windows, rest: np.ndarray, cols: np.ndarray, per_article: bool = False):
        self.windows, self.rest = windows, rest
        stored, scales, firsts, counts = windows.gather(rest)
        self.firsts, self.counts = firsts, counts
        changed, cscales, cfirsts, _ = windows.gather(cols)
        theirs = (np.asarray(changed, np.float32) * cscales[:, None]).T.copy()
        self.best = np.full(len(stored), -np.inf)
        self.by_article = np.full((len(stored), len(cols)), -np.inf, dtype=np.float32) if per_article else None
        for a in range(0, len(stored), BLOCK_WINDOWS):
            mine = np.asarray(stored[a:a + BLOCK_WINDOWS], np.float32) * scales[a:a + BLOCK_WINDOWS, None]
            sims = mine @ theirs if len(cols) else np.full((len(mine), 0), -np.inf, np.float32)
            if sims.shape[1]:
                self.best[a:a + len(mine)] = sims.max(axis=1)
                if per_article:
                    self.by_article[a:a + len(mine)] = np.maximum.reduceat(sims, cfirsts, axis=1)
        self.best += SLACK

    def of(self, j: int) -> np.ndarray:
        """s_i of the windows of rest[j]."""
        return self.best[self.firsts[j]:self.firsts[j] + self.counts[j]]

    def raised(self, record: Record, total_windows: int):
        """Per kept row: (b_i⁺ or a code, the outsider bound from b_i⁺: +inf unknown, -inf every window found)."""
        lasts, bounds = [], np.full(len(self.rest), np.inf)
        for j, row in enumerate(self.rest):
            old = record.lasts.get(int(row), UNKNOWN)
            if isinstance(old, np.ndarray) and len(old) == self.counts[j]:
                new = np.maximum(old, self.of(j))
                bounds[j] = outsider(new)
            elif isinstance(old, int) and old == EXACT:
                new, bounds[j] = EXACT, -np.inf  # the pool is the top of a full row: R5's old rule
            elif isinstance(old, int) and old == EVERYTHING and per_window(self.counts[j]) >= total_windows:
                new, bounds[j] = EVERYTHING, -np.inf  # still every stored window found
            else:
                new = UNKNOWN
            lasts.append(new)
        return lasts, bounds


def _best_by_window(windows, row: int, members: np.ndarray) -> np.ndarray:
    """(members x windows of `row`): each member's best similarity with each window of the row."""
    codes, scales = windows.windows_of(row)
    mine = np.asarray(codes, np.float32) * scales[:, None]
    stored, sscales, firsts, _ = windows.gather(members)
    sims = (np.asarray(stored, np.float32) * sscales[:, None]) @ mine.T
    return np.maximum.reduceat(sims, firsts, axis=0)


def follow(windows, record: Record, changed: ChangedWindows, j: int, moved: np.ndarray, cols: np.ndarray,
           changed_score: np.ndarray, changed_best: np.ndarray, depth: int):
    """The new window pool of the kept row rest[j] exactly, (rows, window scores, max-sims, b_i⁺), from its
    stored pool, or None when that cannot be told without retrieving its windows again. `changed_score` and
    `changed_best`: the window score and max-sim of the row with each changed article (cols).

    With b_i⁺ bounding the new last similarities: an unchanged member stays an owner when one of its windows
    is nearer than b_i⁺ to window i (always when no changed window came nearer than b_i: only removals then); a
    changed article is an owner when one of its windows is. Of these sure owners S, the best `depth` are the
    new pool, exactly, when nothing else can come between: an article that owned no retrieved window scores at
    most the old outsider bound; one that owned one below the pool, at most the old pool's lowest score and
    after every old member; an unchanged member or a changed article not known to own one, whatever its score.
    """
    row = int(changed.rest[j])
    lasts, pool = record.lasts.get(row), record.pools.get(row)
    if not isinstance(lasts, np.ndarray) or pool is None or len(lasts) != changed.counts[j]:
        return None
    old_rows, old_score, old_best = pool
    raised = np.maximum(lasts, changed.of(j))
    came_nearer = bool((changed.of(j) > lasts).any())
    per_article = changed.by_article[changed.firsts[j]:changed.firsts[j] + changed.counts[j]]  # windows x cols
    changed_owner = (per_article > raised[:, None] + SLACK).any(axis=0)
    kept = (old_rows >= 0) & ~moved[np.maximum(old_rows, 0)]
    lost = int((~kept).sum())
    sure = kept.copy()
    if came_nearer and kept.any():  # a member may have been pushed out of every list: check the unclear ones
        unclear = np.flatnonzero(kept & ~(old_best > raised.max() + SLACK))
        if len(unclear):
            best = _best_by_window(windows, row, old_rows[unclear])
            sure[unclear] = (best > raised[None, :] + SLACK).any(axis=1)
    rows = np.concatenate([old_rows[sure], cols[changed_owner]])
    score = np.concatenate([old_score[sure], changed_score[changed_owner]]).astype(np.float32)
    best = np.concatenate([old_best[sure], changed_best[changed_owner]]).astype(np.float32)
    order = np.lexsort((rows, -score))
    full_before = len(old_rows) >= depth  # else every owner was in the pool: none below it
    if len(order) < depth:
        # every owner is in the pool: exact only if no window left a list (no old member lost) and every
        # changed article is known to own one or not
        nearest_others = (per_article < lasts[:, None] - SLACK).all(axis=0)
        if full_before or lost or not (sure[kept].all() and (changed_owner | nearest_others).all()):
            return None
        return rows[order], score[order], best[order], raised
    top, rest_ = order[:depth], order[depth:]
    floor = float(score[top[-1]])
    if floor <= outsider(lasts) + SLACK:  # an article that owned no retrieved window may come in
        return None
    if len(rest_) and float(score[rest_[0]]) >= floor - SLACK:  # a tie at the boundary
        return None
    unclear_members = kept & ~sure
    if (old_score[unclear_members] >= floor - SLACK).any():
        return None
    unclear_changed = ~changed_owner
    if (changed_score[unclear_changed] >= floor - SLACK).any():
        return None
    if full_before:  # an owner below the old pool comes after every old member and scores at most its lowest
        ahead = int(sure.sum()) + int((changed_score[changed_owner] > float(old_score.min()) + SLACK).sum())
        if ahead < depth:
            return None
    return rows[top], score[top], best[top], raised


class WindowSide:
    """The window pool's part of the learned reach (learned_reach.reached_by_learned_score) for blocks of kept
    rows: its old and new membership, exact, from the stored pools (`follow`), or from full window rows where
    every stored window is retrieved (a small corpus) or the ranking is exact; and the window values of single
    pairs."""

    def __init__(self, ranker, frozen, rest: np.ndarray, moved: np.ndarray, depth: int, eps: float):
        self.windows, self.record, self.depth, self.eps = ranker.windows, frozen.windows, depth, eps
        self.rest, self.moved = rest, moved
        self.cols = np.flatnonzero(moved)
        self.changed = ChangedWindows(self.windows, rest, self.cols, per_article=True)
        n = len(moved)
        self.changed_score, self.changed_best = self.windows.rows(self.cols, with_max=True) if len(self.cols) \
            else (np.zeros((0, n), np.float32), np.zeros((0, n), np.float32))
        self.col_of = np.full(n, -1, dtype=np.int64)
        self.col_of[self.cols] = np.arange(len(self.cols))
        self.total = len(self.windows.codes)

    def full_row(self, j: int) -> bool:
        lasts = self.record.lasts.get(int(self.rest[j]), UNKNOWN)
        return isinstance(lasts, int) and (lasts == EXACT or (lasts == EVERYTHING and per_window(
            self.changed.counts[j]) >= self.total))

    def membership(self, start: int, r: np.ndarray, old_bound: np.ndarray):
        """For the block r = rest[start:start + len(r)]: (sure in new, sure out new, sure in old, sure out old: each
        len(r) x n), the new window bound of each row and the rows whose new pool cannot be told (ranked again)."""
        n = len(self.moved)
        in_new, out_new = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        in_old, out_old = np.zeros((len(r), n), bool), np.ones((len(r), n), bool)
        bound, lost = np.full(len(r), -np.inf), np.zeros(len(r), dtype=bool)
        full = np.array([self.full_row(start + j) for j in range(len(r))], dtype=bool)
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
        for j in np.flatnonzero(~full):
            q = int(r[j])
            found = follow(self.windows, self.record, self.changed, start + j, self.moved, self.cols,
                           self.changed_score[:, q], self.changed_best[:, q], self.depth)
            if found is None:
                lost[j] = True
                continue
            rows, score, best, raised = found
            old_rows = self.record.pools[q][0]
            in_old[j, old_rows[old_rows >= 0]] = True
            out_old[j] = ~in_old[j]
            in_new[j, rows] = True
            out_new[j] = ~in_new[j]
            bound[j] = max(float(score.min()) if len(rows) >= self.depth else -np.inf, outsider(raised))
            self.record.lasts[q], self.record.pools[q] = raised, (rows, score, best)
        return in_new, out_new, in_old, out_old, bound, lost

    def pair_values(self, qs: np.ndarray, cs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window score, max-sim) of each pair (qs[i], cs[i]): a changed candidate's from its own row, an
        unchanged one's as the ranker computes it (WindowScores.pairs)."""
        score, best = np.zeros(len(qs), np.float32), np.zeros(len(qs), np.float32)
        changed = self.col_of[cs] >= 0
        score[changed] = self.changed_score[self.col_of[cs[changed]], qs[changed]]
        best[changed] = self.changed_best[self.col_of[cs[changed]], qs[changed]]
        others = np.flatnonzero(~changed)
        order = others[np.argsort(qs[others], kind="stable")]
        cuts = np.flatnonzero(np.diff(qs[order])) + 1
        for group in np.split(order, cuts) if len(order) else ():
            score[group], best[group] = self.windows.pairs(*self.windows.windows_of(int(qs[group[0]])), cs[group])
        return score, best
