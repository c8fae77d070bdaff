"""R4 of incremental.py, narrowed: which kept lists the near-duplicate collapse (rank.linking.collapse_duplicates)
can change. Shared by the default and the learned reach.

The collapse's copies are pairs with a cosine at the `[duplicates] threshold` t, or one title of 3+ words and a
cosine at min(t, TITLE_COPY_COSINE): the copy graph, kept in the lists state (its edges) and brought up to date
each night from the changed articles alone (their edges now: one product with every vector). Its components
group the articles the collapse can join into one slot.

Take a kept list q whose other rules (R2, R3/R5 or L3) hold: every changed article scores below the list's
threshold, and no unchanged article enters or leaves above it, so the articles at or above the threshold are the
same unchanged ones in the same order, less any changed ones. Each list records them (A_q: its candidates whose
score, plus the topic bonus, reaches the threshold, with the float slack). The slots it shows are made by them
(a slot joins copies only, so a component's slots are decided by its own members); an article below the
threshold changes a slot only by joining it as an earlier published copy, which takes the slot's place. A slot
whose first member has no date never changes so (an unknown date is never earlier). Hence a kept list is ranked
again (R4) only when:

* R4a: a changed or removed article of A_q had a copy (its leaving can split a slot or free a copy it held);
* R4b: a dated member of A_q has another dated article in its component (the other may join its slot, from any
  place in the list, and be the earlier published: the old rule's condition, kept for dated copies).

Every other list's collapse is what it was. On a corpus without dates (MDN) R4b never fires, and R4a only for
lists that had a changed copy at or above their threshold; the old rule ranked again every list whose article
or links had a copy or a shared title anywhere.
"""

from __future__ import annotations

import numpy as np

from ..rank.linking import TITLE_COPY_COSINE
from .window_reach import EPS


def copy_edges(vectors: np.ndarray, codes: np.ndarray | None, threshold: float, rows: np.ndarray | None = None,
               block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The copy graph's edges (a, b) with a in `rows` (None: every row, each edge once), with the float slack EPS
    (an edge too many only ranks a list again)."""
    n = len(vectors)
    every = rows is None
    rows = np.arange(n) if every else np.asarray(rows, dtype=np.int64)
    low = min(threshold, TITLE_COPY_COSINE) - EPS
    a_out, b_out = [], []
    for start in range(0, len(rows), block):
        r = rows[start:start + block]
        sims = vectors[r] @ vectors.T
        near = sims >= low
        near[np.arange(len(r)), r] = False
        if every:
            near &= np.arange(n)[None, :] > r[:, None]
        i, j = np.nonzero(near)
        copy = sims[i, j] >= threshold - EPS
        if codes is not None:
            copy |= (codes[r[i]] == codes[j]) & (codes[j] >= 0)
        a_out.append(r[i[copy]])
        b_out.append(j[copy])
    if not a_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a_out).astype(np.int64), np.concatenate(b_out).astype(np.int64)


def above_threshold(cand, chosen: list, policy) -> np.ndarray:
    """A_q: the candidates of a list whose score (plus the topic bonus, an upper bound of the adjusted score)
    reaches its threshold, as incremental.thresholds reads it from the stored list."""
    links = policy.links
    ranked = [link.score for link in chosen if not link.pinned and not np.isnan(link.score)]
    if len(chosen) >= links.k:
        thr = min(ranked) if ranked else np.inf
    else:
        thr = -np.inf if links.min_score is None else links.min_score
    bonus = links.topic_bonus if links.same_topic == "prefer" else 0.0
    return np.sort(cand.rows[cand.score.astype(np.float64) + bonus >= thr - EPS]).astype(np.int64)


class CopyReach:
    """The copy graph of the last run and of this one over the current rows and the removed articles (nodes n..),
    and each kept list's A_q; `reached` gives R4 for kept rows. Brings frozen.copies and frozen.above up to date."""

    def __init__(self, job, frozen, state: dict, prev: np.ndarray, same: np.ndarray):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n, n_old = len(prev), len(state["ids"])
        node = np.full(n_old, -1, dtype=np.int64)
        node[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
        removed = np.flatnonzero(node < 0)
        node[removed] = n + np.arange(len(removed))
        total = n + len(removed)
        self.moved = np.ones(total, dtype=bool)
        self.moved[:n] = ~same
        old_a, old_b = node[state["copy_a"]], node[state["copy_b"]]
        self.had_copy = np.bincount(np.concatenate([old_a, old_b]), minlength=total) > 0
        kept = ~self.moved[old_a] & ~self.moved[old_b]
        new_a, new_b = copy_edges(job.vectors, getattr(job.facts, "title_codes", None),
                                  job.policy.duplicates.threshold, np.flatnonzero(~same))
        frozen.copies = (np.concatenate([old_a[kept], new_a]), np.concatenate([old_b[kept], new_b]))
        a, b = np.concatenate([old_a, new_a]), np.concatenate([old_b, new_b])
        graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(total, total))
        _, self.label = connected_components(graph, directed=False)
        self.has_copy = (np.bincount(np.concatenate([a, b]), minlength=total) > 0)[:n]  # before or now
        dated = np.zeros(total, dtype=bool)
        dated[:n] = ~np.isnan(np.asarray(job.facts.days, dtype=np.float64)) & same
        self.dated = dated  # an unchanged article with a date (a changed one is in no A_q that stays)
        self.dated_mates = np.bincount(self.label, weights=np.concatenate([~np.isnan(
            np.asarray(job.facts.days, dtype=np.float64)), np.zeros(len(removed), dtype=bool)]))
        ptr, members = state["above_ptr"], state["above_rows"]
        self.above: dict[int, np.ndarray] = {}
        for row in np.flatnonzero(same):
            p = prev[row]
            self.above[int(row)] = node[members[ptr[p]:ptr[p + 1]]]
            mine = self.above[int(row)]
            frozen.above[int(row)] = mine[~self.moved[mine]]  # changed ones now score below the threshold

    def reached(self, rest: np.ndarray) -> np.ndarray:
        """R4a or R4b (module docstring) for each kept row in `rest`."""
        out = np.zeros(len(rest), dtype=bool)
        sets = [self.above.get(int(q), np.zeros(0, np.int64)) for q in rest]
        if not sets:
            return out
        owner = np.repeat(np.arange(len(rest)), [len(s) for s in sets])
        members = np.concatenate(sets)
        np.logical_or.at(out, owner[self.moved[members] & self.had_copy[members]], True)  # R4a
        np.logical_or.at(out, owner[self.dated[members] & (self.dated_mates[self.label[members]] >= 2)], True)  # R4b
        return out


def state_arrays(frozen, n: int) -> dict:
    """The copy graph and every list's A_q for lists-state.npz (empty when the collapse is off)."""
    a, b = frozen.copies if frozen.copies is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    sets = [frozen.above.get(row, np.zeros(0, np.int64)) for row in range(n)]
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(s) for s in sets])
    rows = np.concatenate(sets).astype(np.int32) if n else np.zeros(0, np.int32)
    return {"copy_a": a.astype(np.int32), "copy_b": b.astype(np.int32), "above_ptr": ptr, "above_rows": rows}


def duplicates(frozen, rest: np.ndarray) -> np.ndarray:
    """R4 for the kept rows `rest` (none when the collapse is off)."""
    if frozen.duplicates is None:
        return np.zeros(len(rest), dtype=bool)
    return frozen.duplicates.reached(rest)
