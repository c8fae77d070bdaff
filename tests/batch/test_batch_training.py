"""The nightly batch trains the learned ranking itself: when the corpus has enough curated lists and no model is
stored or the lists changed; the run record says whether it trained and with what cross-validated figures."""

import json

from recommender import Index
from recommender.batch.nightly import run_batch
from recommender.rank.learned import load_model
from recommender.rank.policy import policy_from_dict
from recommender.batch.runrecord import render_run

TOPICS = ("rocket orbit launch satellite moon telescope", "bread flour oven yeast dough crust",
          "match goal striker league season coach", "solar wind battery grid turbine power")


def tagged_feed(path, count=48, partner_of=lambda i: i ^ 1):
    """Articles over four topics whose texts cannot tell two stories of a topic apart; each pair of stories
    shares a rare series tag, and each story's curated list is its partner: only the tag decides the gold."""
    lines = []
    for i in range(count):
        words = TOPICS[i % 4].split()
        lines.append(json.dumps({
            "id": f"s/{i}", "title": f"story {i}", "text": " ".join(words[(i + j) % 6] for j in range(30)),
            "tags": [f"topic-{i % 4}", f"series-{i // 2}"], "related": [f"s/{partner_of(i)}"]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def policy(**ranking):
    return policy_from_dict({"ranking": ranking, "links": {"k": 3}, "duplicates": {"threshold": 1.0}})


def run(feed, tmp_path, p):
    return run_batch(feed, tmp_path / "idx", tmp_path / "out", p, model="hashing", progress=False)


def test_batch_trains_when_due_and_again_when_the_curated_lists_change(tmp_path):
    feed = tagged_feed(tmp_path / "feed.jsonl")
    p = policy(train_min_lists=40)
    first = run(feed, tmp_path, p)
    training = first.training
    assert training["trained"] and training["reason"] == "no model stored" and training["lists"] == 48
    cv = training["cv"]
    assert cv["folds"] == 5 and cv["learned"]["queries"] == 48
    assert cv["learned"]["recall@10"] > cv["default"]["recall@10"]  # the series tag decides, and is learned
    assert training["used"] and first.ranking == "learned" and first.lists["kind"] == "full"
    with Index.open(tmp_path / "idx") as index:
        assert "learned_ranker" in index.data.manifest.files
    model = load_model(tmp_path / "idx")
    top = sorted(model.signals, key=dict(zip(model.signals, model.coef)).get)[-3:]
    assert {"tag_overlap", "curated_back"} <= set(top)  # the partners share a series tag and link to each other
    assert "learned ranking trained (no model stored)" in render_run(first)
    with open(tmp_path / "out" / "related.jsonl") as fh:  # the links follow the learned ranking
        links = {r["id"]: [x["id"] for x in r["related"]] for r in map(json.loads, fh)}
    assert sum(links[f"s/{i}"][0] == f"s/{i ^ 1}" for i in range(48)) >= 40

    again = run(feed, tmp_path, p)
    assert not again.training["trained"]
    assert again.training["reason"] == "curated lists unchanged since the last training"
    assert again.training["cv"] == cv

    tagged_feed(feed, partner_of=lambda i: (i + 2) % 48)  # the editors' lists change (the tags do not)
    changed = run(feed, tmp_path, p)
    assert changed.training["trained"] and changed.training["reason"] == "curated lists changed"
    assert load_model(tmp_path / "idx").curated != model.curated


def test_batch_does_not_train_below_the_threshold_or_when_the_policy_says_off(tmp_path):
    feed = tagged_feed(tmp_path / "feed.jsonl")
    few = run(feed, tmp_path, policy(train_min_lists=49))
    assert few.training == {"trained": False, "lists": 48,
                               "reason": "48 curated lists, at least 49 are needed to learn a ranking "
                                         "([ranking] train_min_lists is 49)"}
    assert few.ranking == "default" and load_model(tmp_path / "idx") is None
    assert "learned ranking not trained: 48 curated lists" in render_run(few)
    off = run(feed, tmp_path, policy(train_min_lists=10, learned="off"))
    assert off.training == {"trained": False, "reason": "[ranking] learned = off"}
    assert load_model(tmp_path / "idx") is None


def test_a_model_made_for_other_signals_is_trained_again(tmp_path):
    from recommender.rank.learned import _digest
    from recommender.store.manifest import file_entry, read_manifest, write_manifest

    feed = tagged_feed(tmp_path / "feed.jsonl")
    p = policy(train_min_lists=40)
    run(feed, tmp_path, p)
    folder = tmp_path / "idx"
    path = folder / "learned-ranker.json"
    doc = json.loads(path.read_text())  # as an older version would have stored it: one signal fewer, intact
    for key in ("signals", "mean", "scale", "coef"):
        doc["model"][key] = doc["model"][key][:-1]
    doc["sha256"] = _digest(doc["model"])
    path.write_text(json.dumps(doc))
    manifest = read_manifest(folder)
    manifest.files["learned_ranker"] = file_entry(path)
    write_manifest(folder, manifest)
    again = run(feed, tmp_path, p)
    assert again.status == "ok"
    assert again.training["trained"] and again.training["reason"] == "stored model refused"
    assert len(load_model(folder).coef) == len(doc["model"]["coef"]) + 1


def test_shared_tag_pool_brings_in_candidates_the_text_pools_miss(tmp_path):
    from recommender.batch.build import build_index

    feed = tagged_feed(tmp_path / "feed.jsonl")
    build_index(feed, tmp_path / "idx", model="hashing", progress=False)
    p = policy(candidates=2)  # dense and TF-IDF pools of 3: the stories of a topic cannot be told apart
    with Index.open(tmp_path / "idx") as index:
        ranker = index.ranker(p, learned=False)
        assert ranker.tag_pool is not None
        with_tags = ranker.score_rows(range(48))
        ranker.tag_pool = None
        without = ranker.score_rows(range(48))
    partner = [f"s/{i ^ 1}" for i in range(48)]
    rows = {f"s/{i}": i for i in range(48)}  # the JSONL order is the row order
    assert all(rows[partner[c.query]] in c.rows for c in with_tags)
    assert sum(rows[partner[c.query]] in c.rows for c in without) < 24


def test_a_site_with_few_lists_is_ranked_by_the_shipped_default_in_full_runs(tmp_path, monkeypatch):
    from recommender.rank import default_model

    shipped = default_model.DefaultModel(signals=["window_z", "lexical_z", "tag_overlap"], coef=[1.0, 0.5, 2.0],
                                         loco={"x": {"transfer": {"recall@10": 0.7}, "fixed": {"recall@10": 0.6}}})
    monkeypatch.setattr(default_model, "_SHIPPED", (shipped,))
    feed = tagged_feed(tmp_path / "feed.jsonl")
    first = run(feed, tmp_path, policy(learned="auto"))  # 48 lists, fewer than train_min_lists (50)
    assert first.ranking == "transferable default" and not first.training["trained"]
    # the tag decides the gold here: the shipped model's tag weight finds every partner; the fixed weights do not
    assert first.evaluation["system"]["recall@10"] == 1.0
    tagged_feed(feed, partner_of=lambda i: (i + 2) % 48)  # the lists change: the links are ranked again, in full
    again = run(feed, tmp_path, policy(learned="auto"))
    assert again.lists["kind"] == "full" and "transferable default" in json.dumps(again.lists["reasons"])
    off = run(feed, tmp_path, policy(learned="off"))
    assert off.ranking == "default" and off.evaluation["system"]["recall@10"] < 0.5
