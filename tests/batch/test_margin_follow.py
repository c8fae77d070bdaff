"""R2 under a learned ranking (recommender.batch.margin_follow): a list that shows a changed article is made
again from the ranked entries it recorded beyond k, without ranking it again, when that is sure. Nights of small
edits to shown articles (so they keep about their place) and one rewrite: some lists are made again from their
margins, and every list equals a full recomputation with the same frozen statistics. Putting the changed
articles back at their new scores is what makes them right: without it, the test fails."""

import numpy as np
import pytest
from listcheck import TOPICS, assert_same_lists, full_with_frozen, outputs, write_records

from recommender.batch import margin_follow
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


def _titled_records(rng, dated: bool):
    """Articles where many share a one-word title (the title rule hides all but the best of them in a list) and
    some are copies of others (the same text: the collapse joins them), with dates or without."""
    out = _records(rng)
    for i, record in enumerate(out):
        if i % 4 == 0:
            record["title"] = ["Value", "Length", "Name"][i % 3]
        if dated:
            record["published"] = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
    for i in range(100, 102 if dated else 112):  # copies of articles shown in many lists: same text, another id
        out[i]["text"] = out[i - 60]["text"]
    return out


@pytest.mark.parametrize("dated, half_life", [(False, 0), (True, 0), (True, 60)])
def test_margins_hold_what_the_title_rule_and_the_collapse_hid(tmp_path, monkeypatch, dated, half_life):
    """A margin keeps every candidate that may reach its floor, also those the title rule hid or the collapse joined
    to a copy, so such lists are made again from their margins too (undated: a dated copy from below the floor may
    take a slot, so those lists are ranked again), and every list equals a full recomputation."""
    rng = np.random.default_rng(11)
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    policy = Policy().with_links(k=5, min_score=None).with_section("ranking", learned="on", train_min_lists=20) \
        .with_section("batch", refit_drift=0.3).with_section("recency", half_life_days=half_life)
    records = _titled_records(rng, dated)
    write_records(feed, records)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    replayed = []  # (shared title among the entries, a copy among them) of each list made from its margin
    original = margin_follow.replay

    def watched(job, q, margin, moved, entering, has_copy, slack):
        made = original(job, q, margin, moved, entering, has_copy, slack)
        if made is not None:
            rows = margin[0][margin[0] >= 0]
            codes = job.facts.name_codes[rows]
            codes = codes[codes >= 0]
            replayed.append((len(np.unique(codes)) < len(codes), bool(has_copy[rows].any())))
        return made

    monkeypatch.setattr(margin_follow, "replay", watched)
    for round_ in range(3):
        shown = [x[0] for links in outputs(out).values() for x in links]
        for article in rng.choice(sorted(set(shown) - {r["id"] for r in records if "related" in r}), 4,
                                  replace=False):
            record = next(r for r in records if r["id"] == article)
            record["text"] += " " + " ".join(rng.choice(TOPICS[int(article.split("/")[1]) % 5], 2))
        records[int(rng.integers(112, N))]["text"] = " ".join(rng.choice(TOPICS[round_], 38))
        titled = sorted({a for a in shown if int(a.split("/")[1]) % 4 == 0 and int(a.split("/")[1]) < 100})
        moved = next(r for r in records if r["id"] == titled[round_ % len(titled)])  # its title's next one shows
        moved["text"] = " ".join(rng.choice(TOPICS[(int(moved["id"].split("/")[1]) + 2) % 5], 38))
        write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists["kind"] == "incremental", record.lists
        assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy, learned=True))
    if dated:  # no list with a dated copy among its entries is made from its margin
        assert not any(copy for _, copy in replayed)
    else:
        assert any(title for title, _ in replayed) and any(copy for _, copy in replayed)


def test_a_replayed_entry_the_decay_puts_under_the_floor_is_not_trusted():
    """An entry kept beyond the list (here hidden by the title rule, its title-mate now changed) whose score the
    recency decay puts under the floor may sit below a candidate the margin never recorded: the replay must not
    choose it. With every other entry changed, too few trusted entries remain, so the list is ranked again."""
    from types import SimpleNamespace

    from recommender.rank.linking import RuleColumns

    n, k = 16, 2
    infos = [SimpleNamespace(id=f"doc/{i}", source=None, title="Value" if i in (1, 14) else f"Page {i}",
                             url=f"https://example.org/doc/{i}/", published="2024-06-01" if i != 14 else "2020-01-01",
                             draft=False, kind="article") for i in range(n)]
    policy = Policy().with_links(k=k, min_score=None).with_section("recency", half_life_days=30)
    job = SimpleNamespace(policy=policy, facts=RuleColumns.from_infos(infos), overrides=None, as_of=None,
                          vectors=np.eye(n, dtype=np.float32))
    entries = np.arange(1, 13)  # k + 10 entries, best first, same day as the query: no decay
    raw = np.linspace(3.0, 1.9, len(entries))
    margin = (np.concatenate([entries, [14]]), np.concatenate([raw, [2.5]]), float(raw[-1]))  # 14: hidden, old
    moved = np.zeros(n, dtype=bool)
    moved[1:12] = True  # all but the last entry changed, and none scores at the floor now
    made = margin_follow.replay(job, 0, margin, moved, {}, np.zeros(n, dtype=bool), 1e-3)
    assert made is None
    moved[1:11] = True  # a sure list: two entries at or above the floor remain
    moved[11] = False
    made = margin_follow.replay(job, 0, margin, moved, {}, np.zeros(n, dtype=bool), 1e-3)
    assert made is not None and [link.row for link in made[0]] == [11, 12]
