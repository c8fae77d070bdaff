"""Nights over lexical pools taken from the posting lists' heads (rank.candidates: a query whose terms' postings
pass EXACT_POSTINGS gets its lexical candidates from store.lextopk.ImpactTopK, a bounded read that is not the
exact top of its row; at 60,000 articles, 96% of MDN-like queries). Here the limits are made small, so that about
half of the queries read heads and their reads are cut short: every list of every night equals a full
recomputation, under the default and the learned ranking."""

import numpy as np
import pytest
from listcheck import TOPICS, write_records
from test_incremental import SMALL_POOLS as DEFAULT_SMALL_POOLS
from test_incremental import _records
from test_incremental import test_incremental_lists_equal_a_full_recomputation as default_nights
from test_learned_incremental import LEARNED, SMALL_POOLS
from test_learned_incremental import test_learned_incremental_lists_equal_a_full_recomputation as learned_nights

from recommender.batch.incremental import STATE_FILE, load_state
from recommender.batch.nightly import run_batch
from recommender.rank import candidates
from recommender.rank.index import Index


@pytest.fixture
def short_heads(monkeypatch):
    """About half of the fixture corpus's queries (their terms' postings: 257-873, median 718) read heads of 200
    postings in all, at least 4 of each term."""
    monkeypatch.setattr(candidates, "EXACT_POSTINGS", 700)
    monkeypatch.setattr(candidates, "IMPACT_BUDGET", 200)
    monkeypatch.setattr(candidates, "IMPACT_MIN_PER_TERM", 4)


@pytest.mark.parametrize("policy", [LEARNED.with_links(k=5, min_score=None),
                                    SMALL_POOLS.with_links(k=5, min_score=None)])
def test_learned_nights_over_head_pools(tmp_path, short_heads, policy):
    learned_nights(tmp_path, policy, None, False)


@pytest.mark.parametrize("policy", [DEFAULT_SMALL_POOLS.with_links(k=5, min_score=None)])
def test_default_nights_over_head_pools(tmp_path, short_heads, policy):
    default_nights(tmp_path, policy, False, False)


def test_kept_lists_bound_their_head_pools_outsiders(tmp_path, short_heads):
    """What the default ranking's reach (R5) leans on: after each night, every list's stored lexical bound is at
    least the cosine of every article outside its lexical pool as the ranking now retrieves it. A kept list whose
    pool comes from heads takes the new retrieval's bound (head_pools): its old bound says nothing of the
    articles a changed posting pushed out of the heads."""
    policy = DEFAULT_SMALL_POOLS.with_links(k=5, min_score=None).with_section("batch", refit_drift=0.5)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records = _records(160)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    rng = np.random.default_rng(4)
    kept = 0
    for round_ in range(3):
        for i in rng.choice(len(records), 6, replace=False):
            records[int(i)]["text"] = " ".join(rng.choice(TOPICS[round_], 40))  # rewritten: new heads
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        kept += len(records) - record.lists["recomputed"]
        state = load_state(out / STATE_FILE)
        with Index.open(index_dir) as index:
            ranker = index.ranker(policy, learned=False)
            stage, depth = ranker.lexical_stage(), ranker.ranking.candidates + 1
            heads = stage.heads_made()
            assert heads.any() and not heads.all()
            each = np.array([not stage.exact_pool(stage.row(q)[0]) for q in range(stage.n)])
            assert np.array_equal(heads, each) and np.array_equal(stage.heads_made(block=37), each)
            assert np.array_equal(stage.heads_made(np.array([9, 2, 2])), each[[9, 2, 2]])
            assert np.array_equal(state["lexical_heads"], heads)
            for q in range(stage.n):
                terms, weights = stage.row(q)
                pool = stage.pool(terms, weights, depth)[0]
                outside = np.setdiff1d(np.arange(stage.n), pool)
                values = stage.values(terms, weights, outside)
                assert values.max(initial=0) <= state["bound_lexical"][q] + 1e-6, (q, bool(heads[q]))
    assert kept > 0

