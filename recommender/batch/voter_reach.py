"""The `neighbour_lists` voters in the learned reach (learned_reach.reached_by_learned_score): whether a kept list's
voters (the curated-list owners among its 20 strongest candidates) can differ after a night's changes (LN), and,
when only a voter's strength changed, which of its candidates' scores changed with it.

`neighbour_lists` gives each candidate the votes of the lists of the query's 20 strongest candidates, each vote
weighted by its voter's strength (learned_pairs.voter_strength: the pair's dense and lexical z-scores, a function of
the two articles alone with the statistics frozen). So when an owner among the 20 changed (its text, hence its
strength), but the same owners are the 20 strongest's owners after the change, only the candidates its curated
list holds get other votes: every other candidate keeps its score. Those candidates (`reweighed_scores`), with the
list's changed pairs, are scored again under the new record; the list is then made again from its margin
(margin_follow.replay) like a list that shows a changed article, those candidates counting as changed. A member
that joined or left an owner's list is itself a changed article (its graph facts are in its signature:
learned_reach.graph_signatures), so the owner's list as it is now names every candidate whose votes moved.
"""

from __future__ import annotations

import numpy as np

from ..rank.graph_signals import NEIGHBOURS
from .learned_pairs import pair_scores

RECORDED = NEIGHBOURS + 10  # strongest candidates recorded per list
STRENGTH_EPS = 1e-5  # float slack of the strength comparisons (a mean of two float32 z-scores)
REWEIGHED = "a voter's strength changed"  # voters_change: the same owners vote, a changed one among them


def voters_change(rows, values, cut, sure_out, sure_in, moved, owners, new_rows, new_values, bounds, q) -> str:
    """LN for one kept list: why the owners among its 20 strongest candidates (positive strength) can differ now
    ("" when they cannot, REWEIGHED when they are the same owners but a changed one among them votes with a new
    strength: in both cases its record is brought up to date in `bounds`)."""
    if np.isnan(cut):
        return "no record"
    valid = rows != -1
    old_top = [(r, v) for r, v in zip(rows[valid][:NEIGHBOURS], values[valid][:NEIGHBOURS]) if v > 0]
    if any(r == -2 for r, _ in old_top):  # a voter removed: its list is gone from the graph
        return "a voter was removed"
    merged = []
    for r, v in zip(rows[valid], values[valid]):
        if r < 0 or moved[r] or sure_out[r]:
            continue
        if not sure_in[r] and v > 0:
            return "a voter at the pool boundary"  # a candidate or not, cannot tell
        merged.append((r, v))
    have = {r for r, _ in merged}
    merged += [(int(r), float(v)) for r, v in zip(new_rows, new_values) if r not in have]
    merged.sort(key=lambda x: -x[1])
    strengths = [v for _, v in merged]
    if cut > 0 and (len(merged) < NEIGHBOURS or strengths[NEIGHBOURS - 1] <= cut + STRENGTH_EPS):
        return "the new 20th not recorded"
    if len(merged) > NEIGHBOURS and strengths[NEIGHBOURS - 1] > 0:
        tied = [owners[r] for r, v in merged if abs(v - strengths[NEIGHBOURS - 1]) <= STRENGTH_EPS]
        if len(tied) > 1 and any(tied) and strengths[NEIGHBOURS] >= strengths[NEIGHBOURS - 1] - STRENGTH_EPS:
            return "a tie at the 20th"  # an owner among candidates the order of the pool decides
    new_top = merged[:NEIGHBOURS]
    if {r for r, v in old_top if owners[r]} != {r for r, v in new_top if v > 0 and owners[r]}:
        return "other voters"
    kept = merged[:RECORDED]
    bounds["voters"][q], bounds["voter_strength"][q] = -1, np.nan
    bounds["voters"][q, :len(kept)] = [r for r, _ in kept]
    bounds["voter_strength"][q, :len(kept)] = [v for _, v in kept]
    dropped = [v for _, v in merged[RECORDED:]]
    bounds["voter_cut"][q] = max([cut] + dropped)
    return REWEIGHED if any(moved[r] for r, v in new_top if v > 0 and owners[r]) else ""


def reweighed_scores(job, stats, pair_values, q: int, cols: np.ndarray, sure_in: np.ndarray,
                     sure_out: np.ndarray, moved: np.ndarray, bounds: dict):
    """For list q whose voters_change was REWEIGHED (its new record in `bounds`): (the pairs scored: the
    candidates whose votes moved, those its changed voters' lists hold, and `cols`, the list's pairs the reach
    scored with the old record; their learned scores under the new record), or None when the membership of one of
    those candidates cannot be told. pair_values(qs, cs): the raw part values of pairs (the reach's TopSide and
    WindowSide)."""
    voters = bounds["voters"][q]
    values = bounds["voter_strength"][q]
    lists = job.graph.lists
    top = voters[:NEIGHBOURS]
    changed = top[(top >= 0) & (np.nan_to_num(values[:NEIGHBOURS]) > 0)]
    changed = changed[moved[changed]]
    members = np.unique(np.concatenate([lists.indices[lists.indptr[o]:lists.indptr[o + 1]] for o in changed] +
                                       [np.zeros(0, np.int64)]))
    members = members[members != q].astype(np.int64)
    if (~sure_in[members] & ~sure_out[members]).any():
        return None  # a candidate or not, cannot tell
    cs = np.unique(np.concatenate([np.asarray(cols, np.int64), members[sure_in[members]]]))
    qs = np.full(len(cs), q, dtype=np.int64)
    score, _ = pair_scores(job, stats, qs, cs, pair_values(qs, cs), np.repeat(voters[None, :], len(cs), 0),
                           np.repeat(values[None, :], len(cs), 0))
    return cs, score
