"""The learned reach's per-list work done for many kept lists at once (pool_follow.follow_tops,
window_reach.follow_many) gives, list by list, what the one-list functions give (pool_follow.follow_top,
window_reach.follow), on random pools built to hit their cases: removed and changed members, short lexical
pools, ties at the boundary, the query itself (+inf)."""

import functools

import numpy as np
import pytest
from test_two_stage_incremental import few_windows  # noqa: F401 (a fixture)

from recommender.batch.pool_follow import follow_top, follow_tops
from recommender.batch.window_batch import _Block, follow_many
from recommender.batch.window_reach import ChangedWindows, follow, per_window
from recommender.batch.window_record import Record


def _pools(rng, n, depth, moved, lists):
    olds = []
    for _ in range(lists):
        size = depth if rng.random() < 0.7 else int(rng.integers(1, depth))
        rows = rng.choice(n, size, replace=False).astype(np.int64)
        values = np.round(rng.random(size) * 8) / 8 + 0.25  # coarse: ties
        values = values.astype(np.float32)
        if rng.random() < 0.2:
            rows[rng.integers(size)] = -2  # removed
        if rng.random() < 0.2:
            values[rng.integers(size)] = np.inf  # the query itself
        olds.append(None if rng.random() < 0.05 else (rows, values))
    return olds


def _top_case(rng, grid: float):
    """A night's made-up dense or lexical pools of 30 lists: (depth, moved, cols, col_of, olds, changed values)."""
    n, depth = 60, int(rng.integers(2, 12))
    moved = rng.random(n) < 0.15
    cols = np.flatnonzero(moved)
    col_of = np.full(n, -1)
    col_of[cols] = np.arange(len(cols))
    changed = np.round(rng.random((30, len(cols))) * 12) / 8 - grid  # some <= 0, some tie the old values
    return depth, moved, cols, col_of, _pools(rng, n, depth, moved, 30), changed


def test_follow_tops_is_follow_top_list_by_list():
    rng = np.random.default_rng(3)
    seen = {"kept": 0, "none": 0}
    for trial in range(40):
        depth, moved, cols, _, olds, changed = _top_case(rng, 0.2)
        for positive in (False, True):
            for eps in (0.0, 1e-4, 0.2):
                got = follow_tops(olds, moved, cols, changed, depth, eps, positive)
                for j, old in enumerate(olds):
                    want = None if old is None else follow_top(old, moved, cols, changed[j], depth, eps, positive)
                    seen["none" if want is None else "kept"] += 1
                    assert _same(None if got[j] is None else got[j][:2], want), (trial, j)
                    assert got[j] is None or got[j][2] is None  # nothing recorded after the pools: nothing after
    assert seen["kept"] > 500 and seen["none"] > 500, seen


def _top(values: np.ndarray, count: int, positive: bool) -> np.ndarray:
    """The `count` best columns of a row by value, then lower column (positive: values above 0 only)."""
    cols = np.flatnonzero(values > 0) if positive else np.arange(len(values))
    return cols[np.lexsort((cols, -values[cols]))][:count]


def test_follow_tops_with_the_rows_after_the_pools_against_full_rows():
    """With the rows recorded after each pool (`mores`), follow_tops gives, whenever it gives a pool, the top of
    the new full row: the pool, and after it rows that are the row's next ones, in order. Rows built with ties
    and changes that push members out (what the rows after the pool are for): far fewer lists need their own row
    than without them."""
    rng = np.random.default_rng(5)
    with_more, without, checked = 0, 0, 0
    for trial in range(200):
        n, depth, extra = 80, int(rng.integers(2, 10)), int(rng.integers(1, 8))
        positive = bool(trial % 2)
        old = np.round(rng.random((20, n)) * 1024) / 1024 - (0.25 if positive else 0.0)  # some ties; exact in float32
        moved = rng.random(n) < 0.1
        cols = np.flatnonzero(moved)
        new = old.copy()
        new[:, cols] = np.round(rng.random((20, len(cols))) * 1024) / 1024 - (0.25 if positive else 0.0)
        olds, mores = [], []
        for q in range(20):
            top = _top(old[q], depth + extra, positive)
            olds.append((top[:depth], old[q, top[:depth]].astype(np.float32)))
            mores.append((top[depth:], old[q, top[depth:]].astype(np.float32)) if len(top) > depth else None)
        for eps, slack in ((0.0, False), (1e-6, True)):
            got = follow_tops(olds, moved, cols, new[:, cols], depth, eps, positive, mores=mores)
            plain = follow_tops(olds, moved, cols, new[:, cols], depth, eps, positive)
            with_more += sum(g is not None for g in got)
            without += sum(g is not None for g in plain)
            for q, found in enumerate(got):
                if found is None:
                    continue
                rows, values, more = found
                want = _top(new[q], len(rows) + (0 if more is None else len(more[0])), positive)
                assert np.array_equal(np.sort(rows), np.sort(want[:len(rows)])), (trial, q)
                if more is not None and len(more[0]):
                    assert np.array_equal(more[0], want[len(rows):]), (trial, q)
                    assert len(more[0]) <= (0 if mores[q] is None else len(mores[q][0]))
                checked += 1
    assert checked > 2000 and with_more > without * 1.2, (checked, with_more, without)


class _Windows:
    """What follow reads of WindowScores: the number of stored windows and a pair's coarse (tied) scores."""

    codes = np.zeros(10_000)

    def windows_of(self, row):
        return row, None

    def pairs(self, row, _, rows):
        rows = np.asarray(rows)
        return (((row * 7 + rows * 13) % 9) / 8).astype(np.float32), (((row + rows) % 5) / 4).astype(np.float32)


class _Changed:
    """What follow reads of ChangedWindows, made up: the kept rows' windows and the changed windows near them."""

    added = ChangedWindows.added

    def __init__(self, rest, counts, cols, sizes, found):
        self.rest, self.counts, self.cols = rest, counts, cols
        self.firsts = np.cumsum(counts) - counts
        self.cfirsts = np.cumsum(sizes) - sizes
        self.best = np.zeros(int(counts.sum()))
        found.sort(key=lambda x: (x[0], x[1]))
        self.added_at = np.array([f[0] for f in found], np.int64)
        self.added_window = np.array([f[1] for f in found], np.int64)
        self.added_sim = np.array([f[2] for f in found], np.float32)


class DenseChanged:
    """changed_pairs.ChangedPairs' interface over full arrays (changed articles x n)."""

    def __init__(self, score: np.ndarray, best: np.ndarray):
        self.score, self.best = score, best

    def values(self, qs: np.ndarray, cs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.score[cs, qs], self.best[cs, qs]

    def block(self, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.score[:, qs], self.best[:, qs]


def _window_case(rng, n, depth, lists):
    moved = rng.random(n) < 0.2
    cols = np.flatnonzero(moved)
    sizes = rng.integers(1, 4, len(cols))  # windows of each changed article
    rest = rng.choice(n, lists, replace=False)
    counts = rng.integers(1, 4, lists)
    record, found = Record(n), []
    coarse = lambda size: (np.round(rng.random(size) * 12) / 12).astype(np.float32)  # noqa: E731 (ties)
    for j, q in enumerate(rest):
        per = per_window(int(counts[j]))
        rows, sims, sizes_, floors = [], [], [], []
        for i in range(counts[j]):
            size = max(0, per + int(rng.integers(-2, 6)))
            mine = -np.sort(-coarse(size))
            if size > 2 and rng.random() < 0.05:
                mine[[0, -1]] = mine[[-1, 0]]  # not best first: follow sorts it
            floor = float(mine.min(initial=1.0)) - (0.0 if rng.random() < 0.2 else 0.05)
            rows.append(np.where(rng.random(size) < 0.05, -2, rng.integers(0, n, size)))
            sims.append(mine)
            sizes_.append(size)
            floors.append(floor)
            for w in np.flatnonzero(rng.random(int(sizes.sum())) < 0.1):
                found.append((int(counts[:j].sum()) + i, int(w), max(floor + 0.01, float(coarse(1)[0]))))
        record.near[int(q)] = (np.concatenate(rows).astype(np.int32), np.concatenate(sims).astype(np.float32),
                               np.array(sizes_, np.int32), np.array(floors, np.float64))
        members = rng.choice(n, int(depth if rng.random() < 0.7 else rng.integers(1, depth + 1)), replace=False)
        record.pools[int(q)] = (members.astype(np.int64), coarse(len(members)), coarse(len(members)))
    changed = _Changed(rest, counts, cols, sizes, found)
    score = (np.round(rng.random((len(cols), n)) * 8) / 8).astype(np.float32)
    return record, changed, moved, score, (score * 0.5).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _compiled_kernels():
    """follow_compiled's loops compiled here (once), whether or not this process runs the compiled loops."""
    import numba

    from recommender.batch import follow_compiled

    segments, pools = numba.njit(follow_compiled._segments), numba.njit(follow_compiled._pools)
    follow_compiled.check_segments(segments)
    follow_compiled.check_pools(pools)
    return segments, pools


@pytest.fixture(params=["numpy", "compiled"])
def block_kind(request, monkeypatch):
    """follow_many's block by window_batch._Block's NumPy steps, or by follow_compiled's compiled loops."""
    from recommender.batch import window_batch

    kernels = _compiled_kernels() if request.param == "compiled" else None
    monkeypatch.setattr(window_batch, "kernels", lambda: kernels)
    return kernels


def _block(kernels, *args):
    """The block follow_many makes, and how many of its lists it decided itself (pools or None)."""
    from recommender.batch.follow_compiled import POOL, CompiledBlock

    if kernels is None:
        block = _Block(*args)
        return block, int((~block.fallback & ~block.unknown).sum())
    block = CompiledBlock(kernels, *args)
    return block, int((block.status == POOL).sum())


def test_follow_many_is_follow_list_by_list(few_windows, block_kind):
    """Made-up records with coarse similarities and scores (ties at every step), small pools: follow_many gives
    every list what window_reach.follow gives it, batched or left to follow, with or without a pool; by the NumPy
    steps and by the compiled loops."""
    rng = np.random.default_rng(11)
    seen = {"pools": 0, "none": 0, "batched": 0}
    windows = _Windows()
    for trial in range(60):
        n, depth = 50, int(rng.integers(2, 9))
        record, changed, moved, score, best = _window_case(rng, n, depth, 20)
        js = np.arange(20)
        got = follow_many(windows, record, changed, js, moved, DenseChanged(score, best), depth)
        qs = np.asarray(changed.rest)[js]
        _, batched = _block(block_kind, windows, changed, js, [record.near[int(q)] for q in changed.rest],
                            [record.pools[int(q)] for q in changed.rest], moved, score[:, qs], best[:, qs], depth, n)
        seen["batched"] += batched
        for j in js:
            q = int(changed.rest[j])
            want = follow(windows, record, changed, int(j), moved, score[:, q], best[:, q], depth)
            assert _same(got[j], want), (trial, j)
            seen["pools" if want is not None else "none"] += 1
    print(seen)
    assert seen["pools"] > 100 and seen["none"] > 100 and seen["batched"] > 100, seen


def _same(got, want) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if len(got) != len(want):
        return False
    for a, b in zip(got, want):
        if isinstance(a, tuple):
            if not _same(a, b):
                return False
        elif isinstance(a, np.ndarray):
            if not (isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)):
                return False
        elif a != b:
            return False
    return True


def test_the_nights_batched_follows_equal_the_one_list_follows(tmp_path, few_windows, monkeypatch, block_kind):
    """Nights on the sectioned corpus (shared sections: equal similarities, windows displaced, pages rewritten),
    learned ranking, pools of 12: every block's follow_many and follow_tops results equal window_reach.follow and
    pool_follow.follow_top list by list, and every list equals a full recomputation."""
    from dataclasses import replace

    from listcheck import assert_same_lists, full_with_frozen, outputs, write_records
    from test_two_stage_incremental import LEARNED
    from test_two_stage_incremental import _records as sectioned
    from test_two_stage_incremental import night

    from recommender.batch import pool_follow, window_batch, window_reach
    from recommender.batch.nightly import run_batch

    seen = {"window": 0, "window pools": 0, "window batched": 0, "window pairs": 0, "top": 0, "top pools": 0}
    from recommender.batch.follow_compiled import POOL, CompiledBlock

    many, tops = window_batch.follow_many, pool_follow.follow_tops
    kind = window_batch._Block if block_kind is None else CompiledBlock
    pairs = kind.__init__

    def checked_many(windows, record, changed, js, moved, pairs, depth):
        got = many(windows, record, changed, js, moved, pairs, depth)
        # every changed article's values with each list, as its full row has them (what follow read before)
        score, best = windows.rows(changed.cols, with_max=True) if len(changed.cols) else \
            (np.zeros((0, len(moved)), np.float32),) * 2
        for j, found in zip(js, got):
            q = int(changed.rest[j])
            want = window_reach.follow(windows, record, changed, int(j), moved, score[:, q], best[:, q], depth)
            assert _same(found, want), (q, found, want)
            seen["window"] += 1
            seen["window pools"] += want is not None
        return got

    def checked_tops(olds, moved, cols, changed, depth, eps, positive, mores=None):
        got = tops(olds, moved, cols, changed, depth, eps, positive, mores=mores)
        for j, old in enumerate(olds):
            want = None if old is None else pool_follow.follow_top(old, moved, cols, changed[j], depth, eps, positive)
            if mores is None or mores[j] is None:
                assert _same(None if got[j] is None else got[j][:2], want), (j, got[j], want)
            elif got[j] is not None and want is not None:  # the rows after the pool may tell more pools, or a tie
                assert _same(got[j][:2], want), (j, got[j], want)
            seen["top"] += 1
            seen["top pools"] += want is not None
        return got

    def counting(self, *args):  # how often a block asks WindowScores.pairs (new or earlier owners)
        windows = args[0] if block_kind is None else args[1]
        calls = windows.pairs

        def spy(*a):
            seen["window pairs"] += 1
            return calls(*a)

        windows.pairs = spy
        try:
            pairs(self, *args)
        finally:
            del windows.pairs
        decided = ~self.fallback & ~self.unknown if block_kind is None else self.status == POOL
        seen["window batched"] += int(decided.sum())

    monkeypatch.setattr(window_batch, "follow_many", checked_many)
    monkeypatch.setattr(pool_follow, "follow_tops", checked_tops)
    monkeypatch.setattr(kind, "__init__", counting)
    policy = replace(LEARNED, ranking=replace(LEARNED.ranking, candidates=12)).with_links(k=5, min_score=None)
    rng = np.random.default_rng(5)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records, bank = sectioned(rng, 120)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    for round_ in range(2):
        night(records, rng, bank, round_)
        for i in rng.choice(100, 3, replace=False):
            records[int(i)]["text"] += " " + bank[int(rng.integers(len(bank)))]  # a section more at its end
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=True))
    print(seen)
    assert seen["window batched"] > 20 and seen["window pairs"] > 0, seen
    assert seen["top pools"] > 20 and seen["top"] > seen["top pools"], seen


def test_kept_tops_is_kept_top_list_by_list():
    from recommender.batch.steady_pools import _kept_top, _kept_tops

    rng = np.random.default_rng(7)
    seen = {"kept": 0, "none": 0}
    for trial in range(40):
        depth, moved, cols, col_of, olds, changed = _top_case(rng, 0.25)  # the pools' grid: ties
        changed[1::2] += rng.choice([0.0, 5e-5, -5e-5], changed[1::2].shape)  # within the slack of a boundary
        for j in range(0, 30, 2):  # clear of the boundaries: members above, others below
            changed[j] = -0.1
            if olds[j] is not None:
                rows = olds[j][0][olds[j][0] >= 0]
                changed[j, col_of[rows[moved[rows]]]] = 1.5
        for positive in (False, True):
            got = _kept_tops(olds, moved, col_of, changed, depth, positive, block=7)
            for j, old in enumerate(olds):
                want = _kept_top(old, moved, col_of, changed[j], depth, positive)
                seen["none" if want is None else "kept"] += 1
                assert _same(got[j], want), (trial, j, positive)
    assert seen["kept"] > 100 and seen["none"] > 100, seen


def _own_row(values, q, bound, depth, eps, positive):
    """One list's pool from its own row, as TopSide took it one row at a time until 2026-12-06 (the reference)."""
    values = values.astype(np.float64)
    if positive:
        values = np.where(values > 0, values, -np.inf)
    kth = -np.partition(-values, depth - 1)[depth - 1]
    if np.isfinite(kth):
        above, near = values > kth + eps, np.abs(values - kth) <= eps
        tie_free = above.sum() + near.sum() == depth
        mine, sure_out = above | (near & tie_free), values < kth - eps
    else:
        tie_free, mine, kth = True, np.isfinite(values), 0.0
        sure_out = ~mine
    was = values > (np.inf if np.isnan(bound) else bound) + eps
    gone = values < (-np.inf if np.isnan(bound) else bound) - eps
    pool = None
    if tie_free:
        finite = np.isfinite(values)
        top = np.flatnonzero(values >= kth) if finite.sum() >= depth else np.flatnonzero(finite)
        top = top[np.lexsort((top, -values[top]))][:depth]
        top = top[np.isfinite(values[top])]
        pool = (top, np.where(top == q, np.inf, values[top]).astype(np.float32))
    return kth, mine, sure_out, was, gone, pool


def test_own_pools_are_the_one_row_pools_row_by_row():
    """pool_follow.own_pools (many full rows at once) gives each row what one row at a time gave: the boundary,
    the four memberships and the pool recorded, on rows with ties at the boundary, rows with fewer positive
    values than the depth (lexical), values within the slack of the boundary and stored bounds unknown (NaN)."""
    from recommender.batch.pool_follow import own_pools

    rng = np.random.default_rng(11)
    seen = {"pool": 0, "tie": 0, "short": 0}
    for trial in range(60):
        n = int(rng.integers(5, 80))
        depth = int(rng.integers(1, n + 1))
        b = int(rng.integers(1, 9))
        values = np.round(rng.random((b, n)) * 10) / 10 - 0.3  # coarse: ties; some <= 0
        values[rng.random((b, n)) < 0.05] += 3e-6  # within the slack of a tie
        values[0, rng.random(n) < 0.7] = 0.0  # few positive values: a short lexical row
        qs = rng.integers(0, n, b)
        bound = np.where(rng.random(b) < 0.2, np.nan, rng.random(b) - 0.3)
        for positive in (False, True):
            for eps in (0.0, 1e-5, 0.15):
                kth, mine, sure_out, was, gone, pools = own_pools(values, qs, bound, depth, eps, positive)
                for i in range(b):
                    want = _own_row(values[i], int(qs[i]), bound[i], depth, eps, positive)
                    assert kth[i] == want[0], (trial, i)
                    for got, expected in zip((mine[i], sure_out[i], was[i], gone[i]), want[1:5]):
                        assert np.array_equal(got, expected), (trial, i)
                    assert _same(pools[i], want[5]), (trial, i)
                    seen["pool" if want[5] is not None else "tie"] += 1
                    seen["short"] += int(positive and (values[i] > 0).sum() < depth)
    assert min(seen.values()) > 50, seen


def test_distinct_keys_from_the_table_or_the_sort_are_np_unique():
    from recommender.batch.window_batch import TABLE_SPAN, _distinct

    rng = np.random.default_rng(13)
    for size, span in ((0, 10), (1, 1), (50, 40), (500, 100_000), (20_000, 30_000), (3, 10 ** 12)):
        keys = rng.integers(0, span, size).astype(np.int64)
        want = np.unique(keys)
        for got in (_distinct(keys), _distinct(keys, span)):
            assert got.dtype == want.dtype and np.array_equal(got, want), (size, span)
    assert 100_000 > TABLE_SPAN * 500 and 30_000 <= TABLE_SPAN * 20_000  # both ways taken above


def test_pair_values_in_blocks_are_those_of_one_product(monkeypatch):
    """TopSide.pair_values gathers PAIR_BLOCK pairs at a time: every value, dense and lexical, equals bit for bit
    the value of one product over all the pairs."""
    from types import SimpleNamespace

    from scipy import sparse

    from recommender.batch import pool_follow

    rng = np.random.default_rng(17)
    vectors = rng.standard_normal((300, 48)).astype(np.float32)
    tfidf = sparse.random(300, 500, density=0.05, random_state=2, format="csr", dtype=np.float32)
    side = object.__new__(pool_follow.TopSide)
    side.job, side.names = SimpleNamespace(vectors=vectors, lexical=SimpleNamespace(tfidf=tfidf)), ["dense", "lexical"]
    qs, cs = rng.integers(0, 300, 1000), rng.integers(0, 300, 1000)
    whole = {"dense": np.einsum("id,id->i", vectors[qs], vectors[cs]),
             "lexical": np.asarray(tfidf[qs].multiply(tfidf[cs]).sum(axis=1), dtype=np.float64).ravel()}
    for block in (7, 256, 4096):
        monkeypatch.setattr(pool_follow, "PAIR_BLOCK", block)
        got = side.pair_values(qs, cs)
        for name in whole:
            assert got[name].dtype == whole[name].dtype and np.array_equal(got[name], whole[name]), (block, name)
    empty = side.pair_values(qs[:0], cs[:0])
    assert len(empty["dense"]) == 0 and len(empty["lexical"]) == 0


def test_by_value_orders_as_the_stable_lexsort(monkeypatch):
    """pool_follow.by_value: one sort of packed keys where the values are float32 ones, the rows distinct and in
    range, else the lexsort: always the lexsort's order (value descending, row ascending, padding last in place)."""
    import recommender.batch.pool_follow as pool_follow
    from recommender.batch.pool_follow import PADDING, by_value

    lexsort, sorted_by_lexsort = np.lexsort, []
    monkeypatch.setattr(pool_follow.np, "lexsort", lambda *a, **k: sorted_by_lexsort.append(1) or lexsort(*a, **k))
    rng = np.random.default_rng(3)
    for case in range(40):
        b, w = int(rng.integers(1, 30)), int(rng.integers(1, 60))
        values = rng.choice([0.5, 0.25, -0.0, 0.0, 1.0, np.inf, -np.inf], size=(b, w)) if case % 2 else \
            np.round(rng.normal(size=(b, w)), 2).astype(np.float32).astype(np.float64)
        rows = np.stack([rng.permutation(5000)[:w] for _ in range(b)])
        pad = rng.random((b, w)) < 0.2
        rows[pad], values[pad] = PADDING, -np.inf
        if case % 5 == 0:
            rows[:, 1] = rows[:, 0]  # a row twice
            values[:, 1] = values[:, 0]
        if case % 7 == 0:
            values[0, 0] = 0.1  # not a float32 value
        order = lexsort((rows, -values), axis=1)
        sorted_by_lexsort.clear()
        got_rows, got_values, got_order = by_value(rows, values)
        assert np.array_equal(got_order, order), case
        assert bool(sorted_by_lexsort) == (case % 5 == 0 or case % 7 == 0), case  # the packed keys otherwise
        assert np.array_equal(got_rows, np.take_along_axis(rows, order, 1))
        assert np.array_equal(got_values, np.take_along_axis(values, order, 1), equal_nan=True)
