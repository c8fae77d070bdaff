"""R2 under a learned ranking, narrowed: a list that shows a changed article is made again from the ranked entries
it recorded beyond `k` (its margin), without ranking it again, when that gives exactly what a ranking would.

When a list is ranked (relatedlists.link_rows) with no pins, it asks order_candidates for `k + MARGIN_LINKS`
entries instead of `k` (the first `k` are the same: without pins the links step cuts the same order) and keeps
them: rows, scores before the policy's adjustments (the candidates' own) and the last entry's final score, the
floor. It also keeps every other candidate whose score, plus the topic bonus, may reach the floor: those the title
rule hid, the collapse joined to a copy or a filter left out (at most MARGIN_EXTRA; a list with more keeps no
margin). The margin then holds every candidate that may reach the floor, so replaying order_candidates on it
gives what the whole list gives above the floor: the filters, the collapse and the title rule decide each entry
from the entries above it alone. The one exception is the collapse's dated copies (an earlier published copy
from below the floor takes a slot): a list with a dated entry that has a copy is not made from its margin.

At night, for a list whose margin holds a changed article (learned_reach, with the floor as its threshold):
the unchanged entries keep their scores; a changed article that now scores at or above the floor (its exact pair
score, learned_pairs.pair_scores, within 2.4e-6 of the ranker's on the test corpora) enters with it; an unchanged
one that enters or leaves the pools there, a changed one whose pool membership or place is not sure (within the
slack of the floor or of a neighbour), or a dated copy ranks it again. Otherwise order_candidates is replayed on
the entries (filters, adjustments, collapse, title rule) and the links step's choice is taken from them. A list
whose margin holds a changed article but shows none is only no longer followed (its margin is dropped) when
something reaches its floor.
"""

from __future__ import annotations

import numpy as np

from ..rank.linking import choose_links, order_candidates
from ..rank.ranking import Candidates
from .copy_reach import above_threshold
from .window_reach import EPS

MARGIN_LINKS = 10  # ranked entries recorded beyond k
MARGIN_EXTRA = 20  # candidates that may reach the floor kept besides the entries (hidden, collapsed or filtered)


def wanted(job, cand, standing) -> bool:
    """Whether this list's margin is recorded: learned ranking, an incremental state, no reverse rule, no pins."""
    if job.frozen is None or job.learned is None or standing is not None or cand.query < 0:
        return False
    return not (job.overrides and job.overrides.pinned(job.facts.ids[cand.query]))


def record(job, cand, ordered: list) -> None:
    """Keep the list's margin (module docstring), or forget the one it had."""
    margins, q = job.frozen.margins, int(cand.query)
    margins.pop(q, None)
    if len(ordered) < job.policy.links.k + MARGIN_LINKS or any(link.pinned for link in ordered):
        return
    floor = ordered[-1].score
    rows = np.array([link.row for link in ordered], dtype=np.int64)
    raw = cand.score.astype(np.float64)
    others = cand.rows[(raw + job.policy.links.bonus_bound >= floor - EPS) & ~np.isin(cand.rows, rows)]
    if len(others) > MARGIN_EXTRA:
        return
    rows = np.concatenate([rows, np.sort(others).astype(np.int64)])
    order = np.argsort(cand.rows, kind="stable")
    margins[q] = (rows, raw[order[np.searchsorted(cand.rows[order], rows)]], float(floor))


def state_arrays(frozen, n: int, k: int) -> dict:
    width = k + MARGIN_LINKS + MARGIN_EXTRA
    rows, raw, floor = np.full((n, width), -1, np.int32), np.full((n, width), np.nan), np.full(n, np.nan)
    for q, (r, s, f) in frozen.margins.items():
        rows[q, :len(r)], raw[q, :len(r)], floor[q] = r, s, f
    return {"margin_rows": rows, "margin_raw": raw, "margin_floor": floor,
            "margin_extra": np.array([MARGIN_EXTRA], dtype=np.int64)}


def load(state: dict, prev: np.ndarray, same: np.ndarray) -> dict:
    """Each unchanged article's margin, renumbered (a removed article -2)."""
    if "margin_floor" not in state or "margin_extra" not in state:  # before MARGIN_EXTRA: entries alone
        return {}
    renumber = renumbering(prev, len(state["ids"]))
    out = {}
    for row in np.flatnonzero(same):
        p = prev[row]
        if np.isnan(state["margin_floor"][p]):
            continue
        valid = state["margin_rows"][p] >= 0
        out[int(row)] = (renumber[state["margin_rows"][p][valid]], state["margin_raw"][p][valid],
                         float(state["margin_floor"][p]))
    return out


def renumbering(prev: np.ndarray, n_old: int) -> np.ndarray:
    """Each stored row's row now (prev: each row's old row, -1 when new), for rows read from the lists state: a
    removed article -2, and the padding -1 (the last place) stays -1."""
    renumber = np.full(n_old + 1, -2, dtype=np.int64)
    renumber[-1] = -1
    renumber[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
    return renumber


def replay(job, q: int, margin: tuple, moved: np.ndarray, entering: dict, has_copy: np.ndarray, slack: float):
    """(the new chosen links of list q, its new margin, its A_q: copy_reach) from its margin and the changed
    articles `entering` ({row: new score}, each sure to be in its pools and at or above the floor); None when
    that is not sure."""
    rows, raw, floor = margin
    keep = (rows >= 0) & ~moved[np.maximum(rows, 0)]
    new_rows = np.concatenate([rows[keep], np.array(list(entering), dtype=np.int64)])
    new_raw = np.concatenate([raw[keep], np.array(list(entering.values()), dtype=np.float64)])
    k = job.policy.links.k
    if len(new_rows) > k + MARGIN_LINKS + MARGIN_EXTRA:
        return None  # more than a margin keeps
    if (has_copy[new_rows] & ~np.isnan(job.facts.days[new_rows])).any():
        return None  # a dated copy: an earlier published one from below the floor may take a slot
    inserted = np.arange(len(new_rows)) >= int(keep.sum())

    def order(shift: float):
        score = np.where(inserted, new_raw + shift, new_raw).astype(np.float32)
        cand = Candidates(q, new_rows, score, {}, {})
        ordered = order_candidates(cand, job.facts, job.vectors, job.policy, job.overrides, as_of=job.as_of,
                                   limit=k + MARGIN_LINKS)
        # an entry whose final score is under the floor (the recency decay) may be below an unrecorded candidate
        return [link for link in ordered if link.score >= floor - EPS]

    ordered = order(0.0)
    if len(ordered) < k or any([x.row for x in order(s)] != [x.row for x in ordered] for s in (-slack, slack)):
        return None
    added = set(entering)
    if any(link.row in added and link.score <= floor + slack for link in ordered):
        return None  # an entry at the floor: unknown articles below it may come first
    raw_of = dict(zip(new_rows.tolist(), new_raw.tolist()))
    shown = [link.row for link in ordered]
    taken = set(shown)
    out_rows = np.array(shown + [r for r in new_rows.tolist() if r not in taken], dtype=np.int64)
    chosen = choose_links(ordered, job.policy)
    above = above_threshold(Candidates(q, new_rows, new_raw.astype(np.float32), {}, {}), chosen, job.policy)
    return chosen, (out_rows, np.array([raw_of[r] for r in out_rows]), floor), above
