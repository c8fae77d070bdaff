"""Incremental related lists: after changes, additions, removals, pins and blocks, the lists of an incremental
run equal a full recomputation with the same frozen statistics: the same ids in the same order, scores within
1e-5 (float32 z-mixes; the outputs round scores to 6 decimals)."""

from dataclasses import replace

import numpy as np
import pytest
from listcheck import (TOPICS, assert_same_lists, churn_hubs, full_with_frozen, outputs, variant, with_hubs,
                       write_records)

from recommender.batch.nightly import run_batch
from recommender.batch.incremental import STATE_FILE, load_state
from recommender.rank.overrides import Overrides
from recommender.rank.policy import Policy


def _records(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        other = TOPICS[(i * 7 + 3) % len(TOPICS)]
        words = list(rng.choice(topic, 30)) + list(rng.choice(other, 8))
        title = f"{topic[i % 9].title()} guide {i}"
        if i % 11 == 0:  # names another article (mentions)
            words += [f"{TOPICS[(i + 1) % 5][(i + 1) % 9]}", "guide", str(i + 1)]
        out.append({"id": f"doc/{i}", "title": title, "text": " ".join(words)})
    return out


SMALL_POOLS = replace(Policy(), ranking=replace(Policy().ranking, candidates=12))
MENTIONS = replace(Policy(), ranking=replace(Policy().ranking, candidates=12, mention=0.5))


@pytest.mark.parametrize("policy,tagged,hubs", [(Policy().with_links(k=5, min_score=0.5), False, False),
                                                (SMALL_POOLS.with_links(k=5, min_score=None), False, False),
                                                (SMALL_POOLS.with_links(k=6, min_score=0.3), False, False),
                                                (SMALL_POOLS.with_links(k=5, direction="older"), True, False),
                                                (MENTIONS.with_links(k=5, min_score=None), False, True)])
def test_incremental_lists_equal_a_full_recomputation(tmp_path, policy, tagged, hubs):
    """hubs: mention rows longer than the candidate pools (listcheck.with_hubs), with a heavy mention part."""
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    policy = policy.with_section("batch", refit_drift=0.2)  # 3 rounds of 5 changes: 9% of 160, all incremental
    records = _records(160)
    if hubs:
        with_hubs(records, np.random.default_rng(2))
    for i, record in enumerate(records if tagged else ()):  # the shared-tag pool joins the candidates
        record.update(tags=[f"tag-{i % 17}", f"tag-{i % 5}"], published=f"2024-01-{1 + i % 28:02d}")
    write_records(feed, records)
    first = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert first.lists["kind"] == "full"
    rng = np.random.default_rng(1)
    for round_ in range(3):
        picks = rng.choice(len(records), 4, replace=False)
        records[picks[0]]["text"] += " " + " ".join(rng.choice(TOPICS[round_], 12))  # changed a little
        records[picks[1]]["text"] = variant(records[picks[2]], rng, TOPICS[round_])  # now like another one
        del records[int(picks[3])]  # a removal
        for j in range(2):  # additions, each much like an existing article
            model = records[int(rng.integers(len(records)))]
            records.append({"id": f"new/{round_}/{j}", "title": f"{model['title']} again",
                            "text": variant(model, rng, TOPICS[(round_ + j) % 5])})
        if hubs:
            churn_hubs(records, rng)
        write_records(feed, records)
        if round_ == 1:
            pinned = (records[5]["id"], records[40]["id"])
            blocked = (records[6]["id"], records[7]["id"])
            with Overrides.open(index_dir) as overrides:
                overrides.pin(*pinned)
                overrides.block(*blocked)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        assert record.lists["recomputed"] < len(records)
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy))
    got = outputs(out)
    if pinned[0] in got and pinned[1] in got:
        assert got[pinned[0]][0][0::2] == (pinned[1], True)
    assert blocked[1] not in [x[0] for x in got.get(blocked[0], [])]
    assert "doc/0" in got and all(x[0] != "doc/0" for x in got["doc/0"])


def test_policy_change_is_a_full_run(tmp_path):
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    write_records(feed, _records(40))
    run_batch(feed, index_dir, out, Policy().with_links(k=5), model="hashing", progress=False)
    record = run_batch(feed, index_dir, out, Policy().with_links(k=4), model="hashing", progress=False)
    assert record.lists["kind"] == "full" and record.lists["recomputed"] == 40


def test_refit_past_the_drift_threshold_is_a_full_run(tmp_path):
    """Churn up to [batch] refit_drift (5% by default, measured in docs/batch.md) keeps the corpus statistics
    frozen and ranks lists incrementally; one article more refits them and ranks every list (a full run), and
    the run record says which kind each run was."""
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records = _records(100)
    write_records(feed, records)
    policy = Policy().with_links(k=5)
    first = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert first.lists["kind"] == "full" and first.lexical_update == "full"
    mean = load_state(out / STATE_FILE)["mean"]
    for record in records[:5]:  # 5 of 100: at the threshold, not past it
        record["text"] += " " + " ".join(TOPICS[2][:6])
    write_records(feed, records)
    frozen = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert frozen.lexical_update == "incremental" and frozen.lists["kind"] == "incremental"
    assert frozen.lexical_drift == {"count": 100, "churn": 5, "refit_at": 0.05}
    assert np.array_equal(load_state(out / STATE_FILE)["mean"], mean)  # embedding moments kept
    # [batch] decides when to refit, not the links: changing it alone ranks no list again
    again = run_batch(feed, index_dir, out, policy.with_section("batch", refit_drift=0.5), model="hashing",
                      progress=False)
    assert again.lists["kind"] == "incremental" and again.lists["recomputed"] == 0
    records.append({"id": "doc/new", "title": "Json guide new", "text": " ".join(TOPICS[1] * 3)})  # the 6th
    write_records(feed, records)
    refit = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert refit.lexical_update == "full" and refit.lexical_drift == {"count": 101, "churn": 0,
                                                                          "refit_at": 0.05}
    assert refit.lists["kind"] == "full" and refit.lists["recomputed"] == 101
    assert not np.array_equal(load_state(out / STATE_FILE)["mean"], mean)  # moments of the new corpus
    records[50]["text"] += " changed after the refit"
    write_records(feed, records)
    after = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert after.lists["kind"] == "incremental" and after.lexical_drift["churn"] == 1
