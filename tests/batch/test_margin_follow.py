"""R2 under a learned ranking (recommender.batch.margin_follow): a list that shows a changed article is made
again from the ranked entries it recorded beyond k, without ranking it again, when that is sure. Nights of small
edits to shown articles (so they keep about their place) and one rewrite: some lists are made again from their
margins, and every list equals a full recomputation with the same frozen statistics. Putting the changed
articles back at their new scores is what makes them right: without it, the test fails."""

import numpy as np
from listcheck import TOPICS, assert_same_lists, full_with_frozen, outputs, write_records

from recommender.batch.nightly import run_batch
from recommender.rank.policy import Policy

N = 120
FOLLOWED = "shows a changed article, made again from its margin (learned)"


def _records(rng):
    out = []
    for i in range(N):
        topic, other = TOPICS[i % 5], TOPICS[(i * 7 + 3) % 5]
        words = list(rng.choice(topic, 30)) + list(rng.choice(other, 8))
        out.append({"id": f"doc/{i}", "title": f"{topic[i % 9].title()} guide {i}", "text": " ".join(words)})
        if i % 3 == 0 and i < 100:
            out[-1]["related"] = [f"doc/{i + 5}", f"doc/{i + 10}"]
    return out


def test_lists_showing_a_changed_article_made_again_from_their_margins(tmp_path):
    rng = np.random.default_rng(7)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    policy = Policy().with_links(k=5, min_score=None).with_section("ranking", learned="on", train_min_lists=20) \
        .with_section("batch", refit_drift=0.3)
    records = _records(rng)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    followed = 0
    for round_ in range(3):
        shown = [x[0] for links in outputs(out).values() for x in links]
        for article in rng.choice(sorted(set(shown) - {r["id"] for r in records if "related" in r}), 3,
                                  replace=False):  # shown articles, edited a little: they keep about their place
            record = next(r for r in records if r["id"] == article)
            record["text"] += " " + " ".join(rng.choice(TOPICS[int(article.split("/")[1]) % 5], 2))
        records[int(rng.integers(100, N))]["text"] = " ".join(rng.choice(TOPICS[round_], 38))  # one rewritten
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        followed += record.lists["reasons"][FOLLOWED]
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=True))
    assert followed > 0
