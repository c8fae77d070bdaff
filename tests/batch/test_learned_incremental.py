"""Incremental related lists under a learned ranking (recommender.batch.learned_reach): after changes, additions,
removals, pins and blocks, every list of an incremental run equals a full recomputation with the same frozen
statistics (the same ids in the same order, the same pinned flags, scores within 1e-5), and fewer lists than all
are ranked again. Three models have one weight raised (neighbour_lists, named_by, window_max_z) so that the voter
rule, the graph facts in the signatures and the window pool decide lists: turning any off makes its case fail.
With a heavy neighbour_lists, lists whose voters changed only their strength are made again from their margins
(voter_reach): counting a voter's list members as changed, or scoring them again, is what keeps them equal."""

from dataclasses import replace

import numpy as np
import pytest
from listcheck import (TOPICS, assert_same_lists, churn_hubs, full_with_frozen, outputs, variant, with_hubs,
                       write_records)

from recommender.batch.nightly import run_batch
from recommender.rank.learned import ALL_SIGNALS, load_model, save_model
from recommender.rank.overrides import Overrides
from recommender.rank.policy import Policy

N = 160
REWEIGHED_REMADE = "its strongest candidates' strength changed, made again from its margin (learned)"
ENTERED = "a changed article reaches it, made again from its margin (learned)"


def _records(n, sections=False):
    """Articles in 5 topics, some naming others; every third of the first 150 has a curated list of two
    same-topic articles. sections: each also holds two long sections from a bank of 24 shared by chance, so that
    the window pool (a shared section) differs from the dense and lexical pools (the mean of a page)."""
    rng = np.random.default_rng(0)
    vocabulary = [f"term{j}" for j in range(400)]
    bank = [" ".join(rng.choice(vocabulary, 150)) for _ in range(24)]
    out = []
    for i in range(n):
        topic, other = TOPICS[i % 5], TOPICS[(i * 7 + 3) % 5]
        words = list(rng.choice(topic, 30)) + list(rng.choice(other, 8))
        if sections:
            words += " ".join(bank[j] for j in rng.choice(len(bank), 2, replace=False)).split()
        if i % 11 == 0:
            words += [TOPICS[(i + 1) % 5][(i + 1) % 9], "guide", str(i + 1)]
        record = {"id": f"doc/{i}", "title": f"{topic[i % 9].title()} guide {i}", "text": " ".join(words),
                  "url": f"https://example.org/{['aio', 'json', 'http', 'thread', 'file'][i % 5]}/{i}"}
        if i % 3 == 0 and i < 150:
            record["related"] = [f"doc/{i + 5}", f"doc/{(i + 10) % n}"]
        out.append(record)
    return out


def _curated_ids(records):
    return {r["id"] for r in records if "related" in r} | {x for r in records for x in r.get("related", ())}


LEARNED = replace(Policy(), ranking=replace(Policy().ranking, learned="on", train_min_lists=20))
LEARNED = LEARNED.with_section("batch", refit_drift=0.2)  # 3 rounds of 5 changes (9%): all incremental
SMALL_POOLS = replace(LEARNED, ranking=replace(LEARNED.ranking, candidates=12))


@pytest.mark.parametrize("policy,emphasis,sections", [(LEARNED.with_links(k=5, min_score=None), None, False),
                                                      (SMALL_POOLS.with_links(k=5, min_score=None), None, False),
                                                      (SMALL_POOLS.with_links(k=6, min_score=0.3), None, False),
                                                      (SMALL_POOLS.with_links(k=5), "neighbour_lists", False),
                                                      (SMALL_POOLS.with_links(k=5), ("window_z", "window_max_z"), True),
                                                      (LEARNED.with_links(k=5), "named_by", False),
                                                      (SMALL_POOLS.with_links(k=5), "mention_z", "hubs")])
def test_learned_incremental_lists_equal_a_full_recomputation(tmp_path, policy, emphasis, sections):
    """emphasis: a signal (or signals) whose weight is raised in the trained model, so that its rule decides
    lists. sections "hubs": mention rows longer than the candidate pools (listcheck.with_hubs)."""
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    hubs, sections = sections == "hubs", sections is True
    records = _records(N, sections)
    if hubs:
        with_hubs(records, np.random.default_rng(2))
    write_records(feed, records)
    first = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert first.training["trained"] and first.ranking == "learned"
    assert first.lists["kind"] == "full"
    if emphasis:
        model = load_model(index_dir)
        for name in (emphasis,) if isinstance(emphasis, str) else emphasis:
            model.coef[ALL_SIGNALS.index(name)] = 3.0
        save_model(index_dir, model)
        assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    curated = _curated_ids(records)
    rng = np.random.default_rng(1)
    recomputed, reweighed, entered = [], 0, 0
    for round_ in range(3):  # 15 articles churned: under the refit_drift of LEARNED
        free = [i for i, r in enumerate(records) if r["id"] not in curated]  # a removal there would retrain
        picks = rng.choice(len(records), 3, replace=False)
        records[picks[0]]["text"] += " " + " ".join(rng.choice(TOPICS[round_ % 5], 12))  # changed a little
        if sections:  # takes in a section of another page: a new window match, nothing else alike
            for x, y in rng.choice(len(records), (3, 2), replace=False):
                records[x]["text"] += " " + " ".join(records[y]["text"].split()[-150:])
        records[picks[1]]["text"] = variant(records[picks[2]], rng, TOPICS[round_ % 5])  # now like another
        del records[int(rng.choice(free))]
        for j in range(2):  # additions, each much like an existing article; one names a curated article
            model = records[int(rng.integers(len(records)))]
            text = variant(model, rng, TOPICS[(round_ + j) % 5])
            if j == 0:
                text += f" see {records[3]['title']}"
            records.append({"id": f"new/{round_}/{j}", "title": f"{model['title']} again", "text": text,
                            "url": model["url"] + f"/again{round_}{j}"})
        if hubs:
            churn_hubs(records, rng)
        write_records(feed, records)
        if round_ == 1:
            pinned, blocked = ("doc/3", "doc/46"), ("doc/6", "doc/11")  # curated: never removed here
            with Overrides.open(index_dir) as overrides:
                overrides.pin(*pinned)
                overrides.block(*blocked)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.ranking == "learned" and not record.training["trained"], record.training
        assert record.lists["kind"] == "incremental", record.lists
        recomputed.append(record.lists["recomputed"] / len(records))
        reweighed += record.lists["reasons"][REWEIGHED_REMADE]
        entered += record.lists["reasons"][ENTERED]
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=True))
    if emphasis == "neighbour_lists":  # lists whose voters' strength changed, made again from their margins
        assert reweighed > 0
    if emphasis is None:  # lists a changed article enters, made again from their margins (floor_tests)
        assert entered > 0
    if emphasis is None:  # with a heavy named_by, the article the additions name is in every list: all change
        assert max(recomputed) < 1, recomputed
    got = outputs(out)
    assert got[pinned[0]][0][0::2] == (pinned[1], True)
    assert blocked[1] not in [x[0] for x in got[blocked[0]]]
