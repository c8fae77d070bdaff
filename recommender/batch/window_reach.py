"""The window pool in the nightly reach under the two-stage ranking (recommender.rank.candidates, windowstage).

There the window pool of a query is not the top of a full row: each query window retrieves its `per` nearest stored
windows; the owners of those windows are scored, and the best `depth` of them form the pool. An article owning
none of them scores at most the outsider bound, (mean_i b_i + max_i b_i) / 2 with b_i the last similarity query
window i found. A change moves that bound: a new or changed article's window that comes nearer to query window i
than b_i takes a place in its list and pushes the last one out (b_i rises, at most to that window's similarity);
a removed window lets the next one in (b_i falls). So, per kept list:

* `Record` (batch/window_record.py): the ranker gives each list's b_i (None when every stored window was found)
  and its window pool (rows, window scores, max-sims), stored in the lists state;
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
from .window_record import EVERYTHING, EXACT, UNKNOWN, Record

SLACK = 1e-5  # float slack where numbers of different routines meet (a full window row's, a pair's; R5's bound)
EPS = 1e-4  # float slack of the reach tests (scores are float32 z-mixes): incremental's and learned_reach's


def approximate(ranker) -> bool:
    """Whether the ranker's window candidates come from an approximate index (store.windowann, IVF: a site above
    windowstage.EXACT_WINDOW_SEARCH stored windows) rather than an exact search."""
    return ranker.windows is not None and getattr(ranker.window_stage().ann, "approximate", False)


def search_key(ranker) -> str | None:
    """The approximate window index's training key (centroids, 8-bit ranges, nprobe), None under exact search."""
    return ranker.window_stage().ann.training_key if approximate(ranker) else None


def full_run_reason(ranker, state: dict) -> str | None:
    """Why the window pools of the last night cannot be followed to this one under an approximate window index
    (None: they can, or the search is exact). Its pools are followed only while the index keeps the training and
    nprobe the lists were ranked with (store.windowann.reusable_training: the windows stay within about
    0.64-1.56 times those it was trained on, and its recall at the kept nprobe reaches the target; else it is
    trained anew and every list is ranked again), and from each list's recorded retrieval (its margin)."""
    if not approximate(ranker):
        return None
    if "near_len" not in state or "wann_key" not in state:
        return "no window pools recorded for the approximate window search"
    if state["wann_key"].tobytes().decode() != search_key(ranker):
        return "window index trained anew (windows past its growth range, or its recall below target)"
    return None


def outsider(lasts: np.ndarray) -> float:
    """windowstage.WindowStage._outsider_bound from the lasts (+inf when one is unknown)."""
    return float((lasts.mean() + lasts.max()) / 2) if len(lasts) else -np.inf


def per_window(count: int) -> int:
    from ..rank import windowstage

    return max(windowstage.MIN_PER_WINDOW, windowstage.WINDOW_NEIGHBOURS // max(1, count))


MARGIN = 0.25  # windows retrieved beyond a query window's own, as a share of them (windowstage.WindowStage(margin=))


class ChangedWindows:
    """For the kept rows `rest`: s_i of each of their windows (the best similarity with the windows of the new
    and changed rows `cols`) and, with a record (learned ranking), each changed window nearer to a kept window
    than that window's recorded floor (`added`)."""

    def __init__(self, windows, rest: np.ndarray, cols: np.ndarray, record: Record | None = None, ann=None):
        self.rest, self.cols = rest, cols
        stored, scales, firsts, counts = windows.gather(rest)
        self.firsts, self.counts = firsts, counts
        changed, cscales, self.cfirsts, _ = windows.gather(cols)
        theirs = np.ascontiguousarray(changed.T)
        self.best = np.full(len(stored), -np.inf)
        floors = self._floors(record) if record is not None else None
        found: list[tuple] = []
        if getattr(ann, "approximate", False):  # the windows an IVF search of the kept windows can find
            found = self._probed(ann, stored, scales, changed, cscales, floors, record)
        for a in range(0, len(stored) if len(cols) and not found and not getattr(ann, "approximate", False) else 0,
                       BLOCK_WINDOWS):
            # as the window search computes them (windowsearch.ExactWindowSearch.search_codes): exact products,
            # scaled by the stored (changed) window's scale, then the query (kept) window's
            sims = (stored[a:a + BLOCK_WINDOWS] @ theirs).astype(np.float32, copy=False)
            sims *= cscales[None, :]
            sims *= scales[a:a + BLOCK_WINDOWS, None]
            self.best[a:a + len(sims)] = sims.max(axis=1)
            if floors is not None:
                w, c = np.nonzero(sims > floors[a:a + len(sims), None])
                found.append((w + a, c, sims[w, c]))
        self.added_at = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
        self.added_window = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
        self.added_sim = np.concatenate([f[2] for f in found]) if found else np.zeros(0, np.float32)
        self.best += SLACK

    def _probed(self, ann, stored, scales, changed, cscales, floors, record) -> list[tuple]:
        """Under an approximate window index (its training and nprobe kept from the night the records were made:
        store.windowann.reusable_training): the changed windows each kept window's search can find, those in the
        lists it probes, with the similarities the search computes (an index of the changed windows alone with
        the same training: WindowANN.subset), nearest first, up to as many as the window retrieved with its
        margin. A kept window that found that many above its floor might not see them all: its row's record is
        dropped (the list is ranked again)."""
        vectors = np.asarray(changed, np.float32) * np.asarray(cscales, np.float32)[:, None]
        theirs = ann.subset(vectors, np.arange(len(vectors)))
        probes = self._recorded_probes(record, len(stored), ann.nprobe)
        asked = np.zeros(len(stored), dtype=np.int64)
        for j, row in enumerate(self.rest):
            near = record.near.get(int(row)) if record is not None else None
            if near is not None and len(near[2]) == self.counts[j]:
                asked[self.firsts[j]:self.firsts[j] + self.counts[j]] = near[2]
        found, cut = [], np.zeros(len(stored), dtype=bool)
        for a in range(0, len(stored) if len(vectors) else 0, BLOCK_WINDOWS):
            mine = np.asarray(stored[a:a + BLOCK_WINDOWS], np.float32) * np.asarray(scales[a:a + BLOCK_WINDOWS],
                                                                                    np.float32)[:, None]
            k = int(min(len(vectors), max(1, asked[a:a + len(mine)].max(initial=1))))
            sims, ids = theirs.search(mine, k, probes=self._probes_of(ann, mine, probes, a))
            self.best[a:a + len(mine)] = np.where(ids[:, 0] >= 0, sims[:, 0], -np.inf)
            if floors is None:
                continue
            w, c = np.nonzero((ids >= 0) & (sims > floors[a:a + len(mine), None]))
            found.append((w + a, ids[w, c], sims[w, c]))
            cut[a:a + len(mine)] = (k < len(vectors)) & (ids[:, -1] >= 0) & (sims[:, -1] > floors[a:a + len(mine)])
        total = np.concatenate(([0], np.cumsum(cut)))
        for j in np.flatnonzero(total[self.firsts + self.counts] > total[self.firsts]):
            record.near.pop(int(self.rest[j]), None)
        return found

    def _recorded_probes(self, record: Record | None, total: int, nprobe: int) -> tuple | None:
        """The recorded probes of the kept windows (`Record.probes`: lists and similarities, total x nprobe; a
        window whose row recorded none: list -1), or None when no row recorded any."""
        mine = [] if record is None else [(j, record.probes.get(int(row))) for j, row in enumerate(self.rest)]
        mine = [(j, p) for j, p in mine if p is not None and p[0].shape == (self.counts[j], nprobe)]
        if not mine:
            return None
        lists, sims = np.full((total, nprobe), -1, np.int64), np.zeros((total, nprobe), np.float32)
        for j, (rows, values) in mine:
            lists[self.firsts[j]:self.firsts[j] + self.counts[j]] = rows
            sims[self.firsts[j]:self.firsts[j] + self.counts[j]] = values
        return lists, sims

    @staticmethod
    def _probes_of(ann, mine: np.ndarray, probes: tuple | None, a: int) -> tuple | None:
        """The probes of the block of kept windows from `a` (`mine`: their vectors): recorded, and found where not
        (WindowANN.probes, what a search finds itself); None when none is recorded (the search finds them)."""
        if probes is None:
            return None
        lists, sims = probes[0][a:a + len(mine)].copy(), probes[1][a:a + len(mine)].copy()
        todo = np.flatnonzero(lists[:, 0] < 0)
        if len(todo):
            lists[todo], sims[todo] = ann.probes(mine[todo])
        return lists, sims

    def _floors(self, record: Record) -> np.ndarray:
        """Each kept window's recorded floor (+inf where its row has no record of the right shape)."""
        floors = np.full(int(self.counts.sum()), np.inf)
        for j, row in enumerate(self.rest):
            near = record.near.get(int(row))
            if near is not None and len(near[3]) == self.counts[j]:
                floors[self.firsts[j]:self.firsts[j] + self.counts[j]] = near[3]
        return floors

    def added(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The changed windows above the floors of rest[j]'s windows: (its query window, the changed
        article's row, similarity)."""
        a, b = np.searchsorted(self.added_at, [self.firsts[j], self.firsts[j] + self.counts[j]])
        article = np.searchsorted(self.cfirsts, self.added_window[a:b], side="right") - 1
        return self.added_at[a:b] - self.firsts[j], self.cols[article], self.added_sim[a:b]

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


def _top_owners(rows: np.ndarray, sims: np.ndarray, per: int, floor: float) -> np.ndarray | None:
    """The owners of the best `per` of a query window's windows (articles `rows`, similarities `sims`, best first,
    every window above `floor` known), or None when that depends on how windows of equal similarity are ordered.
    The tied group is the run of windows around the per-th of the same similarity (the floor counting as the next
    window: an unknown window may equal it); a retrieval takes some of it, so it must either add no
    owner beyond those of the windows above it (a paragraph that many pages share ties often, its owners in
    already) or be one article's windows of which at least one is taken."""
    gaps = np.concatenate([-np.diff(sims), [sims[-1] - floor]]) > 0  # gaps[j]: window j above the next
    if gaps[per - 1]:
        return rows[:per]
    clear = np.flatnonzero(gaps)
    below = clear[clear < per - 1]
    lo = int(below[-1]) + 1 if len(below) else 0
    after = clear[clear >= per]
    if not len(after):  # the group reaches the floor: an unknown window may be in it
        return None
    sure, tied = rows[:lo], np.unique(rows[lo:int(after[0]) + 1])
    if np.isin(tied, sure).all():
        return sure
    if len(tied) == 1:  # every tied window is one article's, and at least one of them is taken (lo < per)
        return np.concatenate([sure, tied])
    return None


def follow(windows, record: Record, changed: ChangedWindows, j: int, moved: np.ndarray,
           changed_score: np.ndarray, changed_best: np.ndarray, depth: int):
    """The new window pool of the kept row rest[j] exactly, (rows, window scores, max-sims, its new lasts, its
    new near record, the number of owners), or None when that cannot be told without retrieving its windows
    again. `changed_score`, `changed_best`: the row's window score and max-sim with each changed article (cols).

    Each query window recorded what it retrieved with a margin beyond its `per`: every stored window above a
    floor. Unchanged articles' windows keep their similarities, so the windows now above the floor are the
    recorded ones of unchanged articles and the changed articles' windows above it (`ChangedWindows.added`).
    When at least `per` of them are, the best `per` are what a retrieval finds now (`_top_owners`: the same
    numbers as a search computes, ties at the boundary resolved or refused), and so are their owners; the pool
    is the best `depth` owners by window score, as the ranker takes them (`candidates.pool_of`), the scores of
    owners not in the stored pool computed for them alone (for an owner from before only when the pool may need
    it). The record shrinks as windows leave; a list whose margin ran out is ranked again (and records a new
    one)."""
    from ..rank.candidates import pool_of

    row = int(changed.rest[j])
    near, pool = record.near.get(row), record.pools.get(row)
    count = int(changed.counts[j])
    if near is None or pool is None or len(near[2]) != count:
        return None
    per = per_window(count)
    if per >= len(windows.codes):
        return None
    rows_e, sims_e, counts, floors = near
    starts = np.concatenate(([0], np.cumsum(counts)))
    at, added_rows, added_sims = changed.added(j)
    lasts, tops, kept_rows, kept_sims = np.empty(count), [], [], []
    for i in range(count):
        rows, sims = rows_e[starts[i]:starts[i + 1]], sims_e[starts[i]:starts[i + 1]]
        stay = (rows >= 0) & ~moved[np.maximum(rows, 0)]
        rows = np.concatenate([rows[stay], added_rows[at == i]])
        sims = np.concatenate([sims[stay], added_sims[at == i]])
        above = sims > floors[i]  # the same numbers a search computes: no slack
        rows, sims = rows[above], sims[above]
        if len(rows) < per:
            return None
        order = np.argsort(-sims, kind="stable")
        rows, sims = rows[order], sims[order]
        top = _top_owners(rows, sims, per, floors[i])
        if top is None:
            return None
        lasts[i] = sims[per - 1]
        tops.append(top)
        kept_rows.append(rows)
        kept_sims.append(sims)
    owners = np.unique(np.concatenate(tops)).astype(np.int64)
    score, best = np.empty(len(owners), np.float32), np.empty(len(owners), np.float32)
    old_rows, old_score, old_best = pool
    by_old = np.argsort(old_rows, kind="stable")
    where = np.minimum(np.searchsorted(old_rows[by_old], owners), max(len(old_rows) - 1, 0))
    in_old = (old_rows[by_old][where] == owners) if len(old_rows) else np.zeros(len(owners), dtype=bool)
    is_changed = moved[owners]
    old = in_old & ~is_changed
    score[old], best[old] = old_score[by_old][where[old]], old_best[by_old][where[old]]
    col = np.searchsorted(changed.cols, owners[is_changed])
    score[is_changed], best[is_changed] = changed_score[col], changed_best[col]
    # the other owners: an article that owned a window before and was not in the pool scores at most the pool's
    # lowest and comes after every member, so it is scored only when the pool may need it; a new owner always
    before = np.isin(owners, np.concatenate([rows_e[starts[i]:starts[i] + per] for i in range(count)]),
                     kind="table")  # rows: small whole numbers (a lookup table, not a sort)
    later = ~old & ~is_changed & before if len(old_rows) >= depth else np.zeros(len(owners), dtype=bool)
    new_owner = ~old & ~is_changed & ~later
    if new_owner.any():
        score[new_owner], best[new_owner] = windows.pairs(*windows.windows_of(row), owners[new_owner])
    if later.any():
        ahead = int(old.sum()) + int((score[is_changed | new_owner] > float(old_score.min()) + SLACK).sum())
        if ahead < depth:
            score[later], best[later] = windows.pairs(*windows.windows_of(row), owners[later])
            later[:] = False
    scored = np.flatnonzero(~later)
    if len(scored) > depth:
        ranked = np.sort(score[scored])[::-1]
        if ranked[depth - 1] <= ranked[depth] + SLACK:  # a tie at the pool's boundary
            return None
    rows_pool, _, pick = pool_of(owners[scored], score[scored], depth)
    pick = scored[pick]
    new_near = (np.concatenate(kept_rows).astype(np.int32), np.concatenate(kept_sims).astype(np.float32),
                np.array([len(r) for r in kept_rows], np.int32), floors)
    return rows_pool, score[pick], best[pick], lasts, new_near, len(owners)
