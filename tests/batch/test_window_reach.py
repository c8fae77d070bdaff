"""The window outsider bound of the two-stage ranking moves when a new article's window comes nearer to a query
window than the last one it retrieved: window_reach.ChangedWindows raises each last similarity by what came
nearer, and the bound it gives holds for the new corpus, where the old rule (the stored bound, or the new
article's own window score) does not."""

import numpy as np

from recommender.batch.window_reach import ChangedWindows, outsider
from recommender.batch.window_record import Record
from recommender.rank import windowstage
from recommender.rank.windowsearch import ExactWindowSearch
from recommender.rank.windowstage import WindowStage
from recommender.rank.windows import WindowScores


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_the_raised_bound_holds_after_a_window_came_nearer(monkeypatch):
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 12)
    monkeypatch.setattr(windowstage, "MIN_PER_WINDOW", 4)
    rng = np.random.default_rng(7)
    vectors = _unit(rng.normal(size=(200 * 3, 32)))
    offsets = np.arange(0, 200 * 3 + 1, 3)
    old = WindowScores.from_vectors(vectors, offsets)
    (_, bound, lasts, _), = WindowStage(old).retrieve([old.windows_of(0)])
    record = Record(201)
    record.record(0, lasts, None)
    # a new article: a copy of the query window whose last found window is the nearest of all, and 7 far ones
    query = old.windows_of(0)
    nearest = int(np.argmax(lasts))
    copy = query[0][nearest].astype(np.float32) * query[1][nearest]
    added = np.vstack([vectors, _unit(copy[None, :]), _unit(-vectors[3:10])])
    new = WindowScores.from_vectors(added, np.concatenate([offsets, [len(added)]]))
    (_, true_bound, _, _), = WindowStage(new).retrieve([new.windows_of(0)])
    assert true_bound > bound + 1e-4  # the bound moved
    lasts_raised, raised = ChangedWindows(new, np.array([0]), np.array([200])).raised(record, len(new.codes))
    assert raised[0] >= true_bound - 1e-6
    assert outsider(lasts_raised[0]) == raised[0]
    own = float(new.rows(np.array([200]))[0, 0])  # what the old rule raised the window bound with
    assert max(bound, own) < true_bound


def test_a_pool_followed_from_its_stored_members_takes_no_outsider_it_cannot_see():
    """pool_follow.follow_top: the new top of a row from the stored pool and the changed articles, or None when an
    article outside the stored pool (at most the old lowest) could come in."""
    from recommender.batch.pool_follow import follow_top

    old = (np.array([0, 1, 2, 3, 4]), np.array([np.inf, 0.8, 0.7, 0.6, 0.5], np.float32))  # row 0: the query
    moved = np.zeros(10, dtype=bool)
    moved[[3, 9]] = True
    # row 9 comes in above the boundary, row 3 stays above it: the new pool is the top of what is known
    rows, values = follow_top(old, moved, np.array([3, 9]), np.array([0.65, 0.9]), 5, 1e-5, positive=False)
    assert rows.tolist() == [0, 9, 1, 2, 3]
    # row 3 falls below the old lowest: an article outside the pool (at most 0.5) may now be ahead of it
    assert follow_top(old, moved, np.array([3, 9]), np.array([0.4, 0.1]), 5, 1e-5, positive=False) is None
    # row 3 falls, but row 9 takes its place above the old lowest: the old member 4 is the last, ahead of outsiders
    rows, _ = follow_top(old, moved, np.array([3, 9]), np.array([0.4, 0.55]), 5, 1e-5, positive=False)
    assert rows.tolist() == [0, 1, 2, 9, 4]
    # a removed member (-2) and nothing in its place: fewer known than the pool holds
    removed = (np.array([0, 1, -2, 3, 4]), old[1])
    assert follow_top(removed, np.zeros(10, dtype=bool), np.zeros(0, np.int64), np.zeros(0), 5, 1e-5,
                      positive=False) is None
    # lexical: a pool that held every document sharing a term takes in only changed ones (the others score 0)
    short = (np.array([0, 1]), np.array([np.inf, 0.3], np.float32))
    rows, _ = follow_top(short, moved, np.array([3, 9]), np.array([0.2, 0.0]), 5, 1e-5, positive=True)
    assert rows.tolist() == [0, 1, 3]


def test_window_similarities_are_the_same_numbers_in_any_grouping():
    """The reach compares the similarities it computes (ChangedWindows) with those a window search found and
    recorded, without a slack: both must be the same float32 numbers, whatever the grouping of query windows."""
    rng = np.random.default_rng(11)
    vectors = _unit(rng.normal(size=(300, 48)))
    windows = WindowScores.from_vectors(vectors, np.arange(0, 301, 3))
    search = ExactWindowSearch(windows)
    codes, scales = windows.windows_of(5)
    alone = [search.search_codes(codes[i:i + 1], scales[i:i + 1], 40) for i in range(len(codes))]
    together = search.search_codes(np.vstack([windows.windows_of(r)[0] for r in (4, 5, 6)]),
                                   np.concatenate([windows.windows_of(r)[1] for r in (4, 5, 6)]), 40)
    for i, (sims, ids) in enumerate(alone):
        assert np.array_equal(sims[0], together[0][3 + i]) and np.array_equal(ids[0], together[1][3 + i])
    # the changed article 20's windows seen from row 5's windows, as the reach computes them: the same numbers
    record = Record(100)
    record.near[5] = (np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(3, np.int32), np.full(3, -np.inf))
    at, rows, sims = ChangedWindows(windows, np.array([5]), np.array([20]), record=record).added(0)
    assert (rows == 20).all() and len(sims) == 9
    full = search.search_codes(codes, scales, 300)
    for i, w, s in zip(at, range(len(at)), sims):
        found = full[0][i][full[1][i] == 60 + w % 3]
        assert found[0] == s  # bit for bit
