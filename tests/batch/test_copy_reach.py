"""Incremental related lists when near-duplicates are involved (recommender.batch.copy_reach, R4): a list is
kept only when the collapse of copies cannot change it, so after a night that changes a copy sitting in a list
above its threshold (the collapse joined it to a shown link's slot) or adds an earlier published copy of a shown
link (which takes its slot), every list equals a full recomputation with the same frozen statistics. Under the
default ranking no other rule ranks those lists again: without R4a (the chain) or without R4b (the earlier
copy) the first case fails."""

import numpy as np
import pytest
from listcheck import TOPICS, assert_same_lists, full_with_frozen, outputs, write_records

from recommender.batch.nightly import run_batch
from recommender.rank.policy import Policy

N = 100


def _records(rng):
    """Articles of a topic's words (and a few of another); per topic a hub made of all its words, a title copy of
    the hub (same title, text a little different) and an exact text copy of that one under another title: the
    chain hub ~ copy ~ twin, whose ends are no copies of each other."""
    out = []
    for i in range(N):
        topic, other = TOPICS[i % 5], TOPICS[(i * 7 + 3) % 5]
        words = list(rng.choice(topic, 30)) + list(rng.choice(other, 8))
        out.append({"id": f"doc/{i}", "title": f"{topic[i % 9].title()} guide {i}", "text": " ".join(words),
                    "published": f"2024-03-{1 + i % 28:02d}"})
        if i % 3 == 0 and i < 90:  # curated lists, for the learned ranking
            out[-1]["related"] = [f"doc/{i + 5}", f"doc/{i + 10}"]
    for t, topic in enumerate(TOPICS):
        hub = list(rng.choice(topic, 40))
        out.append({"id": f"hub/{t}", "title": f"All about {topic[0]} {topic[1]}", "text": " ".join(hub),
                    "published": "2024-02-01"})
        off = list(rng.choice(TOPICS[(t + 1) % 5], 6))
        out.append({"id": f"copy/{t}", "title": f"All about {topic[0]} {topic[1]}", "text": " ".join(hub[:34] + off)})
        out.append({"id": f"twin/{t}", "title": f"All about {topic[0]} {topic[1]} again",
                    "text": " ".join(hub[:34] + off + off[:2])})
    return out


@pytest.mark.parametrize("policy,learned", [(Policy().with_links(k=5, min_score=None), False),
                                            (Policy().with_links(k=5, min_score=None).with_section(
                                                "ranking", learned="on", train_min_lists=20), True)])
def test_copies_changed_or_added_give_the_lists_of_a_full_run(tmp_path, policy, learned):
    rng = np.random.default_rng(5)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records = _records(rng)
    write_records(feed, records)
    policy = policy.with_section("batch", refit_drift=0.3)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    before = outputs(out)
    by_id = {r["id"]: r for r in records}
    for t in (0, 1):  # a copy in the middle of a chain leaves: its twin is no longer joined to the hub's slot
        by_id[f"copy/{t}"]["text"] = " ".join(TOPICS[(t + 2) % 5] * 3)
    for t in (2, 3):  # an earlier published title copy of a hub: it takes the hub's slot wherever it is below
        records.append({"id": f"early/{t}", "title": f"All about {TOPICS[t][0]} {TOPICS[t][1]}",
                        "text": " ".join(by_id[f"hub/{t}"]["text"].split()[:32] +
                                         list(rng.choice(TOPICS[(t + 1) % 5], 8))),
                        "published": "2023-01-01"})
    write_records(feed, records)
    record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert record.lists["kind"] == "incremental", record.lists
    after = outputs(out)
    assert_same_lists(after, full_with_frozen(index_dir, out, policy, learned=learned))
    assert record.lists["recomputed"] < len(records), record.lists
    moved = [x for x in before if not x.startswith(("copy/", "early/")) and before[x] != after[x]]
    assert moved, "the changes moved no list of an unchanged article"
