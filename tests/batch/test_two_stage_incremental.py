"""Incremental related lists under the two-stage ranking where the window pool is a real subset: each query window
retrieves only a few nearest stored windows (windowstage.WINDOW_NEIGHBOURS and MIN_PER_WINDOW patched down), so a
new article's window that comes nearer displaces an unchanged article's window from a query's list, and that
article can leave the query's window pool although its score did not change; a rewritten article's windows leave
the lists they were in, and the next windows take their places. After every round, every list of
the incremental run equals a full recomputation with the same frozen statistics."""

from dataclasses import replace

import numpy as np
import pytest
from listcheck import TOPICS, assert_same_lists, full_with_frozen, outputs, stored_window_pools, write_records

from recommender.batch.nightly import run_batch
from recommender.rank import candidates, windowstage
from recommender.rank.policy import Policy

N = 120


def _records(rng, n):
    """Articles of a topic's words and two long sections from a bank of 120 shared by chance (several windows
    each): the window pool (a shared section) differs from the dense and lexical pools (a page's mean). Every
    third of the first 90 has a curated list (for the learned ranking)."""
    vocabulary = [f"term{j}" for j in range(300)]
    bank = [" ".join(rng.choice(vocabulary, 120)) for _ in range(120)]
    out = []
    for i in range(n):
        words = list(rng.choice(TOPICS[i % 5], 20)) + " ".join(
            bank[j] for j in rng.choice(len(bank), 2, replace=False)).split()
        out.append({"id": f"doc/{i}", "title": f"{TOPICS[i % 5][i % 9].title()} page {i}", "text": " ".join(words),
                    "url": f"https://example.org/{i % 5}/{i}"})
        if i % 3 == 0 and i < 90:
            out[-1]["related"] = [f"doc/{i + 5}", f"doc/{i + 10}"]
    return out, bank


def night(records, rng, bank, round_):
    """One night's changes: three new articles made of banked sections (their windows come nearer than others'), a
    section added to one, one rewritten (its old windows leave the lists they were in), one removed."""
    for j in range(3):
        sections = " ".join(bank[x] for x in rng.choice(len(bank), 2, replace=False))
        records.append({"id": f"new/{round_}/{j}", "title": f"Section page {round_} {j}", "text": sections})
    records[int(rng.integers(N - 10))]["text"] += " " + bank[int(rng.integers(len(bank)))]
    moved = records[int(rng.integers(N - 10))]
    moved["text"] = " ".join(bank[x] for x in rng.choice(len(bank), 2, replace=False))
    curated = {r["id"] for r in records if "related" in r} | {x for r in records for x in r.get("related", ())}
    del records[int(rng.choice([i for i, r in enumerate(records[:-3]) if r["id"] not in curated]))]


DEFAULT = Policy().with_section("batch", refit_drift=0.3)
LEARNED = replace(DEFAULT, ranking=replace(DEFAULT.ranking, learned="on", train_min_lists=20))


@pytest.fixture
def few_windows(monkeypatch):
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 24)
    monkeypatch.setattr(windowstage, "MIN_PER_WINDOW", 6)
    monkeypatch.setattr(windowstage, "WINDOW_SAMPLE", 40)
    monkeypatch.setattr(candidates, "LEXICAL_SAMPLE", 50)


@pytest.mark.parametrize("policy,learned", [(DEFAULT.with_links(k=5, min_score=None), False),
                                            (LEARNED.with_links(k=5, min_score=None), True)])
def test_window_displacement_is_followed(tmp_path, few_windows, policy, learned):
    rng = np.random.default_rng(3)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records, bank = _records(rng, N)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    for round_ in range(3):
        night(records, rng, bank, round_)
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        assert record.lists["recomputed"] < len(records), record.lists
        assert record.ranking == ("learned" if learned else "default")
        pools: dict = {}
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=learned, window_pools=pools))
        if learned:  # the window pools the reach followed are those a retrieval finds now
            assert stored_window_pools(out) == pools
