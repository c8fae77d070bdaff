"""The voter rules of the learned reach (recommender.batch.voter_reach and learned_reach.reweighed_voters) on hand-made
records: when a changed voter only changed its strength, and which candidates the list's replay then counts as
changed. The whole path, against full recomputations: tests/batch/test_learned_incremental.py."""

import numpy as np

from recommender.batch import learned_reach
from recommender.batch.voter_reach import NEIGHBOURS, RECORDED, REWEIGHED, voters_change

N = 40


def _record(rows, strengths):
    out_rows, out_values = np.full(RECORDED, -1, np.int64), np.full(RECORDED, np.nan)
    out_rows[:len(rows)], out_values[:len(rows)] = rows, strengths
    return out_rows, out_values


def _bounds():
    return {"voters": np.full((N, RECORDED), -1, np.int64), "voter_strength": np.full((N, RECORDED), np.nan),
            "voter_cut": np.full(N, np.nan)}


def _case(moved_rows, new_strength):
    """List 0's record: candidates 1..25 by falling strength, owners 2 and 5; the candidates 1..30 in its pools."""
    rows, values = _record(np.arange(1, 26), np.linspace(2.0, 0.5, 25))
    moved, owners = np.zeros(N, bool), np.zeros(N, bool)
    moved[list(moved_rows)] = True
    owners[[2, 5]] = True
    sure_in = np.zeros(N, bool)
    sure_in[1:31] = True
    new_rows = np.array(sorted(moved_rows), np.int64)
    return rows, values, moved, owners, sure_in, new_rows, np.array([new_strength] * len(new_rows))


def test_a_changed_owner_that_stays_among_the_strongest_only_reweighs():
    rows, values, moved, owners, sure_in, new_rows, new_values = _case({5}, 1.7)
    bounds = _bounds()
    assert voters_change(rows, values, 0.1, ~sure_in, sure_in, moved, owners, new_rows, new_values, bounds, 0) \
        == REWEIGHED
    assert bounds["voters"][0, 4] == 5 and bounds["voter_strength"][0, 4] == 1.7  # the record brought up to date
    # a changed candidate that owns no list: nothing to reweigh
    rows, values, moved, owners, sure_in, new_rows, new_values = _case({7}, 1.0)
    assert voters_change(rows, values, 0.1, ~sure_in, sure_in, moved, owners, new_rows, new_values, _bounds(), 0) \
        == ""
    # the changed owner falls out of the strongest 20: other voters, ranked again
    rows, values, moved, owners, sure_in, new_rows, new_values = _case({5}, 0.2)
    assert voters_change(rows, values, 0.1, ~sure_in, sure_in, moved, owners, new_rows, new_values, _bounds(), 0) \
        == "other voters"
    # a removed voter: its list before the removal is unknown
    rows, values, moved, owners, sure_in, new_rows, new_values = _case(set(), 0.0)
    rows[3] = -2
    assert voters_change(rows, values, 0.1, ~sure_in, sure_in, moved, owners, new_rows, new_values, _bounds(), 0) \
        == "a voter was removed"
    assert NEIGHBOURS == 20


def test_a_reweighed_list_replays_with_every_pair_scored_again_counted_as_changed(monkeypatch):
    """reweighed_voters' rule, with the scores given: pairs at the floor and in the pools enter the replay; every
    pair scored again counts as changed (so one that left the pools leaves the margin); a pair near the floor, or
    an unchanged one whose membership changed at the floor, ranks the list again."""
    moved = np.zeros(N, bool)
    moved[[3, 4]] = True
    sure_in = np.ones(N, bool)
    sure_in[9] = False  # left the pools
    sure_out = ~sure_in
    cols = np.array([3, 4, 9])  # the list's scored pairs: two changed articles, one unchanged that left the pools

    def run(scores):
        pairs = np.array(sorted(scores))
        monkeypatch.setattr(learned_reach, "reweighed_scores", lambda *a: (pairs, np.array([scores[c] for c in pairs])))
        entrants, ln, reasons = {}, np.zeros(1, bool), {}
        out = learned_reach.reweighed_voters(None, None, None, np.array([0]), {0: (cols, sure_in, sure_out)}, moved,
                                             np.array([1.0]), 0.0, {0: "margin"}, np.zeros(1, bool), ln,
                                             np.zeros(1, bool), entrants, reasons, None)
        return out, entrants.get(0), bool(ln[0])

    # 3 above the floor, 4 below, 9 (left) below, 12 (a voter's list member, unchanged) above
    out, entrants, ln = run({3: 2.0, 4: 0.5, 9: 0.2, 12: 1.5})
    assert not ln and entrants == {3: 2.0, 12: 1.5}
    assert set(np.flatnonzero(out[0])) == {3, 4, 9, 12}  # 9 leaves the margin, 12 enters it at its new score
    assert run({3: 2.0, 4: 0.5, 9: 1.2, 12: 1.5})[2]  # an article that left the pools at the floor: unknown
    assert run({3: 1.0005, 4: 0.5, 9: 0.2})[2]  # at the floor within the slack
    out, entrants, ln = run({3: 2.0})
    assert not ln and entrants == {3: 2.0} and set(np.flatnonzero(out[0])) == {3, 4}
