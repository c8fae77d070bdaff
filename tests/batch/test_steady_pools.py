"""The learned reach's fast path (recommender.batch.steady_pools): a kept list whose pools keep their members is
decided from its pairs with the changed articles alone; one such pair that now reaches the list makes it ranked
again, and the outputs equal a full recomputation."""

from dataclasses import replace

import numpy as np
from listcheck import assert_same_lists, full_with_frozen, outputs, stored_window_pools, write_records
from test_learned_incremental import LEARNED, N, _records
from test_two_stage_incremental import LEARNED as TWO_STAGE_LEARNED
from test_two_stage_incremental import _records as sectioned
from test_two_stage_incremental import few_windows  # noqa: F401 (a fixture)

from recommender.batch.nightly import run_batch
from recommender.batch.steady_pools import sparse_cuts
from recommender.rank.candidates import mention_cuts
from recommender.rank.index import Index
from recommender.rank.learned import ALL_SIGNALS, load_model, save_model

FAST = "(learned: pools followed, changed and displaced pairs alone)"
FAST_L3 = "(learned, pools followed: a changed or displaced member reaches its threshold)"
SHIFTED = "(learned: pools followed, of them with other members)"
ENTERED = "a changed article reaches it, made again from its margin (learned)"


def test_sparse_cuts_are_the_dense_rows_cuts():
    """The cuts from the stored entries of M + Mᵀ, read by rows from M and Mᵀ (BothWays) or from the sum stored by
    an index written before (Summed), are the dense rows' cuts."""
    from scipy import sparse

    from recommender.store.bothways import BothWays, Summed
    from recommender.store.mentionmatrix import transpose

    rng = np.random.default_rng(0)
    n = 60
    matrix = sparse.random(n, n, density=0.15, random_state=1, format="csr", dtype=np.float32)
    matrix.data = np.round(matrix.data * 4) / 4 + np.float32(0.25)  # ties, as weights repeat; none 0
    matrix.sort_indices()
    whole = (matrix + matrix.T.tocsr()).tocsr()
    whole.sort_indices()
    rows = np.arange(40)

    def ways(m):
        t = transpose(m)
        s = (m + m.T.tocsr()).tocsr()
        s.sort_indices()
        return (BothWays((m.indptr, m.indices, m.data), (t.indptr, t.indices, t.data), n),
                Summed((s.indptr, s.indices, s.data), n))

    for both in ways(matrix):
        for depth in (3, 17, 59, 60, 80):
            assert np.array_equal(sparse_cuts(both, rows, depth), mention_cuts(whole.toarray()[rows], depth)), depth
    matrix.data[rng.integers(len(matrix.data))] = -1.0
    assert all(sparse_cuts(both, rows, 3) is None for both in ways(matrix))


def test_a_kept_list_a_changed_member_now_reaches_is_ranked_again(tmp_path):
    """A changed article X inside Q's pools but not in Q's list takes in Q's words: Q's pools keep their members
    (X only rises), so Q is on the fast path, and X's new pair score must send it to be ranked again, or made again
    from its margin with X entering it."""
    policy = replace(LEARNED, ranking=replace(LEARNED.ranking, candidates=12, dense=0.6, window=0.0),
                     duplicates=replace(LEARNED.duplicates, threshold=1.0)).with_links(k=5, min_score=None)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records = _records(N)
    write_records(feed, records)
    first = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert first.ranking == "learned" and first.lists["kind"] == "full"
    model = load_model(index_dir)  # the dense part decides: a copy of Q's text enters Q's list
    model.coef[ALL_SIGNALS.index("dense_z")] = 3.0
    save_model(index_dir, model)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    lists = outputs(out)
    with Index.open(index_dir) as index:
        ids = index.data.store.ids()
        vectors = np.asarray(index.data.vectors.vectors(), dtype=np.float32)
        tfidf = index.data.lexical.tfidf
        lexical = (tfidf @ tfidf.T).toarray()

    def pick(q):  # inside both of Q's pools (the best 8 of 13), not in Q's list, Q not in its list
        dense, words = np.argsort(-(vectors @ vectors[q]))[:8], np.argsort(-lexical[q])[:8]
        shown = {y for y, _, _ in lists[ids[q]]}
        return next((int(c) for c in dense if c != q and c in words and ids[c] not in shown and
                     "related" not in records[c] and ids[q] not in {y for y, _, _ in lists[ids[c]]}), None)

    q, x = next((q, pick(q)) for q in range(20, N) if "related" not in records[q] and len(lists[ids[q]]) == 5
                and pick(q) is not None)
    records[x]["text"] = records[q]["text"] + " " + records[x]["text"][:40]
    write_records(feed, records)
    record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert record.lists["kind"] == "incremental", record.lists
    reasons = record.lists["reasons"]
    assert reasons[FAST_L3] + reasons[ENTERED] >= 1, reasons  # ranked again, or made again from its margin
    assert reasons[FAST] > 0, reasons
    got = outputs(out)
    assert ids[x] in {y for y, _, _ in got[ids[q]]}  # it entered Q's list: Q had to be made again
    assert_same_lists(got, full_with_frozen(index_dir, out, policy, learned=True))


def test_window_pools_kept_on_the_fast_path_are_those_a_retrieval_finds(tmp_path, few_windows):
    """Each query window retrieves a few windows (few_windows), so the window pool is a real subset; pages take in
    a section at their end (their other windows unchanged) or are rewritten: the lists on the fast path keep
    window pools equal to a retrieval's now, and every list equals a full recomputation."""
    policy, rng, feed, index_dir, out, records, bank = _sectioned_first_run(tmp_path, 3)
    fast = 0
    for round_ in range(2):
        for i in rng.choice(110, 3, replace=False):
            records[int(i)]["text"] += " " + bank[int(rng.integers(len(bank)))]  # a section more at its end
        records[int(rng.integers(110))]["text"] = " ".join(bank[x] for x in rng.choice(len(bank), 2, replace=False))
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        fast += record.lists["reasons"][FAST]
        pools: dict = {}
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=True, window_pools=pools))
        assert stored_window_pools(out) == pools
    assert fast > 0


def test_window_pools_followed_to_the_same_articles_stay_on_the_fast_path(tmp_path, few_windows, monkeypatch):
    """A list whose window retrieval changed (a changed page's window moved among a query window's best) but whose
    window pool, followed exactly (window_batch.follow_many), holds the same articles keeps the fast path: only its
    changed members' pairs are scored. Every list equals a full recomputation, every stored window pool a
    retrieval's."""
    from recommender.batch import steady_pools

    kept = []
    same_pool = steady_pools._same_window_pool

    def counted(old, result, moved, depth):
        out = same_pool(old, result, moved, depth)
        kept.append(out is not None)
        return out

    monkeypatch.setattr(steady_pools, "_same_window_pool", counted)
    _sections_at_their_end(tmp_path, 5)
    assert sum(kept) > 0 and not all(kept), (sum(kept), len(kept))


def test_pools_followed_to_other_articles_score_their_displaced_pairs(tmp_path, few_windows):
    """Pages take a section at their end for two nights (the sectioned corpus, seed 3): some kept lists' pools,
    followed exactly, now hold other articles (a window pool's other articles, a dense or lexical pool's next
    recorded row). Those lists stay on the fast path only with their pairs with the unchanged articles entering or
    leaving their candidates scored too, as the slow path scores them: every list equals a full recomputation.
    Without those displaced pairs (`_with_displaced`), doc/30 differs."""
    assert _sections_at_their_end(tmp_path, 3) > 0


def _sections_at_their_end(tmp_path, seed: int) -> int:
    """Two nights of four pages taking a section at their end (the last window of each moves) on the sectioned
    corpus: every list equals a full recomputation, every stored window pool a retrieval's. Returns how many kept
    lists the nights followed to pools of other members on the fast path."""
    policy, rng, feed, index_dir, out, records, bank = _sectioned_first_run(tmp_path, seed)
    shifted = 0
    for round_ in range(2):
        for i in rng.choice(110, 4, replace=False):
            records[int(i)]["text"] += " " + bank[int(rng.integers(len(bank)))]  # its last window moves
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        shifted += record.lists["reasons"][SHIFTED]
        pools: dict = {}
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=True, window_pools=pools))
        assert stored_window_pools(out) == pools
    return shifted


def _sectioned_first_run(tmp_path, seed: int):
    """The sectioned corpus (few windows per query window) under the learned ranking with pools of 12, after its
    first (full) run: (policy, rng, feed, index, out, records, section bank)."""
    policy = replace(TWO_STAGE_LEARNED, ranking=replace(TWO_STAGE_LEARNED.ranking, candidates=12)).with_links(
        k=5, min_score=None)
    rng = np.random.default_rng(seed)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records, bank = sectioned(rng, 120)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    return policy, rng, feed, index_dir, out, records, bank


def test_lists_made_from_their_margins_on_the_fast_path(tmp_path, monkeypatch):
    """A kept list that shows a changed article, whose pools keep their members, is decided on the fast path
    against its margin's floor: its changed members above the floor enter the margin's replay at their new
    scores. Nights of small edits to shown articles: such lists are made again from their margins with changed
    members entering, and every list equals a full recomputation."""
    from recommender.batch import learned_reach, margin_follow

    policy = replace(LEARNED, ranking=replace(LEARNED.ranking, candidates=12, dense=0.6, window=0.0),
                     duplicates=replace(LEARNED.duplicates, threshold=1.0)).with_links(k=5, min_score=None)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records = _records(N)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    on_fast, entered = set(), set()
    settle, replay = learned_reach.settle, margin_follow.replay

    def watched_settle(job, stats, steady, fast, *args):
        mine = args[-4]
        on_fast.update(int(q) for q in steady.rest[fast & mine])
        return settle(job, stats, steady, fast, *args)

    def watched_replay(job, q, margin, moved, entering, has_copy, slack):
        made = replay(job, q, margin, moved, entering, has_copy, slack)
        if made is not None and entering:
            entered.add(int(q))
        return made

    monkeypatch.setattr(learned_reach, "settle", watched_settle)
    monkeypatch.setattr(margin_follow, "replay", watched_replay)
    rng = np.random.default_rng(3)
    for _ in range(3):
        shown = sorted({y for links in outputs(out).values() for y, _, _ in links})
        for article in rng.choice(shown, 4, replace=False):
            record = next(r for r in records if r["id"] == article)
            record["text"] += " " + " ".join(record["text"].split()[:3])  # a little more of itself
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=True))
    assert on_fast & entered, (len(on_fast), len(entered))


def test_with_displaced_is_the_union_masks_difference():
    """A list whose pools changed members: its pairs are its changed candidates and every unchanged article that
    entered or left the union of its pools (the query aside), each flagged as among the new candidates or not,
    as the slow path's n-wide masks give them; the stamps of earlier lists do not leak into a later one."""
    from recommender.batch.steady_pools import _with_displaced

    rng = np.random.default_rng(0)
    n = 80
    stamps = np.full((2, n), -1, dtype=np.int64)
    for j in range(30):
        q = int(rng.integers(n))
        moved = rng.random(n) < 0.1
        old = rng.choice(n, 12, replace=False)
        found = {"dense": (rng.choice(n, 12, replace=False),), "lexical": (rng.choice(n, 9, replace=False),),
                 "window": ((rng.choice(n, 10, replace=False), None, None),)}
        mentions = rng.choice(n, int(rng.integers(0, 4)), replace=False)
        new = np.concatenate([found["dense"][0], found["lexical"][0], found["window"][0][0], mentions])
        members = np.unique(new[moved[new]])
        got, inside = _with_displaced(j, q, members, old, found, mentions, moved, stamps)
        old_mask, new_mask = np.zeros(n, bool), np.zeros(n, bool)
        old_mask[np.concatenate([old, mentions])], new_mask[new] = True, True
        want = (new_mask & moved) | ((old_mask ^ new_mask) & ~moved)
        want[q] = want[q] and moved[q]  # the query's own row: only as a changed member, never displaced
        assert got.tolist() == np.flatnonzero(want).tolist(), j
        assert inside.tolist() == new_mask[got].tolist(), j
