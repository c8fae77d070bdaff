"""Incremental nights above windowstage.EXACT_WINDOW_SEARCH stored windows, where the window candidates come from the
stored IVF window index (the threshold and the index's flat limit lowered so that a few hundred windows take that
path, with 3 of its lists probed): the index keeps its training and nprobe from night to night, the lists state
keeps each list's pools and retrieval, and every list of an incremental night equals a full ranking of every row
over the same index with the same frozen statistics (default and learned ranking)."""

from dataclasses import replace

import numpy as np
import pytest
from listcheck import assert_same_lists, full_with_frozen, outputs, stored_window_pools, write_records
from test_two_stage_incremental import DEFAULT, LEARNED, _records, few_windows, night  # noqa: F401 (a fixture)

from recommender.batch.nightly import run_batch
from recommender.rank import windowstage
from recommender.rank.index import Index
from recommender.store import windowann, windowrecall

N = 120


@pytest.fixture
def ivf_windows(few_windows, monkeypatch):
    monkeypatch.setattr(windowstage, "EXACT_WINDOW_SEARCH", 0)
    monkeypatch.setattr(windowann, "FLAT_MAX", 0)
    monkeypatch.setattr(windowrecall, "NPROBES", (3,))  # few of its ~15 lists probed: what a search finds matters
    monkeypatch.setattr(windowrecall, "RECALL_KEEP", 0.0)  # ... so the kept training is never refused for recall


def _pools_of(policy, size: int = 4):
    """Pools of `size` (each part's candidates): an article can leave or enter a list's candidates."""
    return replace(policy, ranking=replace(policy.ranking, candidates=size)).with_links(k=5, min_score=None)


@pytest.mark.parametrize("policy,learned", [(_pools_of(DEFAULT), False), (_pools_of(LEARNED), True)])
def test_nights_above_the_exact_search_stay_incremental_and_exact(tmp_path, ivf_windows, monkeypatch, policy,
                                                                 learned):
    rng = np.random.default_rng(3)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records, bank = _records(rng, N)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    stats = Index.open(index_dir).data.manifest.stats
    assert stats["window_ann"] == windowann.IVF and stats["window_ann_nprobe"] == 3 < stats["window_ann_nlist"]
    key = stats["window_ann_key"]
    monkeypatch.setattr(windowrecall, "NPROBES", (4,))  # what a night that tuned its nprobe again would choose
    recorded = _checked_probes(monkeypatch)
    for round_ in range(3):
        night(records, rng, bank, round_)
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        stats = Index.open(index_dir).data.manifest.stats
        assert stats["window_ann_training"] == "reused" and stats["window_ann_key"] == key  # trained once
        assert record.lists["kind"] == "incremental", record.lists
        assert record.lists["recomputed"] < len(records), record.lists
        assert record.ranking == ("learned" if learned else "default")
        pools: dict = {}
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=learned, window_pools=pools,
                                                         window_ann=True))
        assert stored_window_pools(out) == pools  # the pools the reach followed are those a retrieval finds now
    # the reach searched kept windows with the probes their lists recorded, each equal to a search's own
    assert recorded["windows"] > 100, recorded


def _checked_probes(monkeypatch) -> dict:
    """Count the kept windows the learned reach searches with the probes their lists recorded, and check each
    against the lists and similarities the index's own search finds for it (WindowANN.probes)."""
    from recommender.batch import window_reach

    taken = window_reach.ChangedWindows._probes_of
    recorded = {"windows": 0}

    def checked(ann, mine, probes, a):
        got = taken(ann, mine, probes, a)
        if probes is not None:
            had = np.flatnonzero(probes[0][a:a + len(mine), 0] >= 0)
            lists, sims = ann.probes(mine[had])
            assert np.array_equal(got[0][had], lists) and np.array_equal(got[1][had], sims)
            recorded["windows"] += len(had)
        return got

    monkeypatch.setattr(window_reach.ChangedWindows, "_probes_of", staticmethod(checked))
    return recorded


def test_a_night_whose_window_index_is_trained_anew_is_a_full_run(tmp_path, ivf_windows, monkeypatch):
    rng = np.random.default_rng(4)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records, bank = _records(rng, N)
    write_records(feed, records)
    policy = DEFAULT.with_links(k=5, min_score=None)
    run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    night(records, rng, bank, 0)
    write_records(feed, records)
    monkeypatch.setattr(windowrecall, "RECALL_KEEP", 1.01)  # the kept training misses its recall: trained anew
    record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert Index.open(index_dir).data.manifest.stats["window_ann_training"] == "new"
    assert record.lists["kind"] == "full"
    assert list(record.lists["reasons"]) == [
        "window index trained anew (windows past its growth range, or its recall below target)"]
