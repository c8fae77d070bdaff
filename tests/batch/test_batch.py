"""The nightly batch: incremental updates, outputs that agree, the lock, run records, and kill -9 safety."""

import json
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from recommender import Index
from recommender.rank.policy import Links, Policy
from recommender.batch.nightly import BatchError, run_batch
from recommender.cli import cli
from recommender.store.lock import exclusive_lock
from recommender.batch.outputs import read_jsonl, read_runs, read_sqlite_links
from recommender.batch.runrecord import render_run

TOPICS = {
    "space": "rocket orbit launch satellite astronaut moon telescope mission crater lander",
    "food": "bread flour oven yeast dough crust butter recipe kitchen sourdough",
    "sport": "match goal striker league season coach stadium penalty keeper final",
    "energy": "solar wind battery grid turbine power storage panel voltage tariff",
}


def synthetic_feed(path, count, start=0, changed=()):
    """A JSONL corpus of `count` small articles over four topics (deterministic)."""
    lines = []
    for i in range(start, start + count):
        topic = list(TOPICS)[i % 4]
        words = TOPICS[topic].split()
        text = " ".join(words[(i + j) % len(words)] for j in range(40))
        if i in changed:
            text += " revised edition with corrections"
        lines.append(json.dumps({"id": f"feed/{i}", "title": f"{topic} story {i}", "text": text,
                                 "source": f"desk-{i % 3}", "published": f"2024-01-{1 + i % 28:02d}"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def batch(corpus, tmp_path, **kwargs):
    kwargs.setdefault("model", "hashing")
    return run_batch(corpus, tmp_path / "idx", tmp_path / "out", kwargs.pop("policy", Policy().with_links(k=5)),
                     progress=False, **kwargs)


def test_incremental_add_change_delete_and_model_change(tmp_path, corpus_dir):
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    first = batch(corpus, tmp_path)
    assert first.status == "ok" and first.added == first.articles == first.embedded == 11
    assert first.skipped == 2 and any("feed.jsonl:4" in r for r in first.skipped_reasons)
    assert first.ignored == 0
    (corpus / "cover.png").write_bytes(b"\x89PNG")  # not an article: counted, not read

    again = batch(corpus, tmp_path)
    assert again.ignored == 1 and "skipped 2, ignored 1" in render_run(again)
    assert (again.added, again.changed, again.removed, again.embedded) == (0, 0, 0, 0)
    assert again.unchanged == 11 and not again.index_rewritten

    (corpus / "text" / "marathon.txt").write_text("Marathon taper\n\nThe last three weeks are for rest.\n")
    (corpus / "text" / "new-post.txt").write_text("Allotment diary\n\nBroad beans and early peas.\n")
    (corpus / "blog" / "no-url-post.md").unlink()
    third = batch(corpus, tmp_path)
    assert (third.added, third.changed, third.removed, third.embedded) == (1, 1, 1, 2)
    with Index.open(tmp_path / "idx") as index:
        assert index.data.has("text/new-post") and not index.data.has("blog/no-url-post")

    other_model = batch(corpus, tmp_path, model="hashing:64")
    assert other_model.embedded == other_model.articles and other_model.added == other_model.articles


def test_outputs_parse_and_agree(tmp_path):
    feed = synthetic_feed(tmp_path / "feed.jsonl", 40)
    # the synthetic stories of one topic share all their words: near-duplicates, so collapse is switched off
    batch(feed, tmp_path, policy=Policy().with_links(k=4).with_section("duplicates", threshold=1.0))
    out = tmp_path / "out"
    lines = list(read_jsonl(out))
    as_map = json.loads((out / "related.json").read_text())
    from_sqlite = read_sqlite_links(out)
    assert len(lines) == len(as_map) == len(from_sqlite) == 40
    for line in lines:
        ids = [r["id"] for r in line["related"]]
        assert len(ids) == 4 and line["id"] not in ids
        assert as_map[line["id"]] == ids == [rid for rid, _ in from_sqlite[line["id"]]]
        assert [r["score"] for r in line["related"]] == pytest.approx([s for _, s in from_sqlite[line["id"]]])
        scores = [r["score"] for r in line["related"]]
        assert scores == sorted(scores, reverse=True)
    # the same topic wins: story 0 (space) links to other space stories
    assert all(r["title"].startswith("space") for r in lines[0]["related"])


def test_options_reach_the_outputs(tmp_path):
    feed = synthetic_feed(tmp_path / "feed.jsonl", 40)
    policy = Policy().with_links(k=5, same_source="exclude", direction="older", min_score=0.2).with_section(
        "duplicates", threshold=1.0)
    batch(feed, tmp_path, policy=policy)
    records = {r["id"]: r for r in read_jsonl(tmp_path / "out")}
    for record in records.values():
        for link in record["related"]:
            assert link["source"] != record["source"]
            assert link["published"] <= record["published"]
            assert link["score"] >= 0.2
    oldest = records["feed/0"]  # 2024-01-01: only same-day articles (feed/28) are not newer
    assert [link["id"] for link in oldest["related"]] == ["feed/28"]
    assert len(records["feed/27"]["related"]) >= 1


def test_run_records_accumulate_and_failures_are_recorded(tmp_path):
    feed = synthetic_feed(tmp_path / "feed.jsonl", 12)
    batch(feed, tmp_path)
    batch(feed, tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="no usable articles"):
        batch(tmp_path / "empty", tmp_path)
    runs = read_runs(tmp_path / "out")
    assert [r["status"] for r in runs] == ["ok", "ok", "failed"]
    assert runs[0]["added"] == 12 and runs[1]["unchanged"] == 12
    assert set(runs[0]["seconds"]) >= {"read", "embed", "index", "related", "evaluate", "write"}
    assert runs[0]["seconds"]["write"] > 0 and runs[0]["ended"] >= runs[0]["started"]
    assert "no usable articles" in runs[2]["error"]
    assert len(list(read_jsonl(tmp_path / "out"))) == 12  # the failed run left the outputs alone


def test_second_batch_is_refused_while_one_runs(tmp_path):
    feed = synthetic_feed(tmp_path / "feed.jsonl", 8)
    with exclusive_lock(tmp_path / "idx"):
        with pytest.raises(BatchError, match="in progress"):
            batch(feed, tmp_path)
        result = CliRunner().invoke(cli, ["batch", str(feed), "--index", str(tmp_path / "idx"), "--out",
                                          str(tmp_path / "out"), "--model", "hashing", "-q"])
        assert result.exit_code == 1 and "in progress" in result.stderr
    assert batch(feed, tmp_path).status == "ok"


def test_batch_cli_summary_and_json(tmp_path, corpus_dir):
    args = ["batch", str(corpus_dir), "--index", str(tmp_path / "idx"), "--out", str(tmp_path / "out"),
            "--model", "hashing", "-k", "3"]
    result = CliRunner().invoke(cli, args + ["-q"])
    assert result.exit_code == 0, result.output
    assert "batch ok: 11 articles" in result.stdout and "added 11" in result.stdout
    assert "against curated related: lists" in result.stdout
    record = json.loads(CliRunner().invoke(cli, args + ["-q", "--json"]).stdout)
    assert record["unchanged"] == 11 and record["evaluation"]["queries"] >= 1
    assert set(record["evaluation"]["system"]) >= {"recall@10", "mrr", "map"}


# --- kill -9 at every phase, in a real subprocess -------------------------------------------------------------

CHILD = textwrap.dedent("""
    import os, signal, sys
    from recommender.batch.nightly import run_batch
    from recommender.rank.policy import Policy
    import recommender.batch.build, recommender.embed.embedder, recommender.batch.outputs

    corpus, idx, out, where = sys.argv[1:5]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "embedding":  # the second round of 256 articles: the first round is committed to the cache
        original = recommender.embed.embedder.HashingEmbedder.encode
        calls = []
        def encode(self, texts, *a, **k):
            calls.append(1)
            if len(calls) == 2:
                die()
            return original(self, texts, *a, **k)
        recommender.embed.embedder.HashingEmbedder.encode = encode
    elif where == "indexing":  # data files written, manifest not yet
        recommender.batch.build.write_manifest = die
    elif where == "writing":  # outputs being written: killed before the renames
        recommender.batch.outputs._write_sqlite = die
    run_batch(corpus, idx, out, Policy().with_links(k=5), model="hashing", progress=False)
""")


@pytest.mark.parametrize("where", ["embedding", "indexing", "writing"])
def test_kill_9_leaves_previous_outputs_and_next_run_recovers(tmp_path, where):
    small = synthetic_feed(tmp_path / "small.jsonl", 20)
    batch(small, tmp_path)
    out = tmp_path / "out"
    before = {name: (out / name).read_bytes() for name in ("related.jsonl", "related.json", "related.sqlite")}

    big = synthetic_feed(tmp_path / "big.jsonl", 700)
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(child), str(big), str(tmp_path / "idx"), str(out), where],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    after = {name: (out / name).read_bytes() for name in before}
    assert after == before  # yesterday's outputs, complete and untouched
    with Index.open(tmp_path / "idx") as index:  # a complete index opens and verifies: the old one, or
        assert len(index) == (700 if where == "writing" else 20)  # the new one if it was committed

    record = batch(big, tmp_path)
    assert record.status == "ok" and record.articles == 700
    if where == "embedding":
        assert record.reused >= 256 and record.embedded <= 700 - 256  # the first round was kept
    else:
        assert record.embedded == 0  # everything was embedded before the kill
    assert len(list(read_jsonl(out))) == 700
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not [p.name for p in (tmp_path / "idx").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("script", ["nightly.cron", "recommender-batch.service"])
def test_shipped_schedules_run_a_valid_batch_command(tmp_path, corpus_dir, script):
    from pathlib import Path
    import shlex

    text = (Path(__file__).resolve().parents[2] / "scripts" / script).read_text()
    line = next(l for l in text.splitlines() if "recommender batch" in l and not l.startswith("#"))
    args = shlex.split(line.split("bin/recommender", 1)[1].split(">>")[0])
    assert args[0] == "batch"
    # the minimum score is the policy's: a value from another score scale (cosines) would filter nothing
    assert "--min-score" not in args
    site = tmp_path / "site"
    args = [str(site / a[len("/srv/site/"):]) if a.startswith("/srv/site/") else a for a in args]
    args = [str(corpus_dir) if a == "content/" else a for a in args] + ["--model", "hashing"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (site / "recommender-out" / "related.json").exists() and (site / "data" / "related.json").exists()
    # Hugo reads every file in data/ and stops the build on a format it does not know (SQLite, JSONL, npz)
    assert sorted(p.name for p in (site / "data").iterdir()) == ["related.json"]


def test_unchanged_rerun_keeps_the_outputs_and_any_change_recomputes(tmp_path):
    feed = synthetic_feed(tmp_path / "feed.jsonl", 30)
    first = batch(feed, tmp_path)
    assert not first.outputs_reused
    jsonl = tmp_path / "out" / "related.jsonl"
    stamp = jsonl.stat().st_mtime_ns
    again = batch(feed, tmp_path)
    assert again.outputs_reused and again.links == first.links and jsonl.stat().st_mtime_ns == stamp
    assert [r["status"] for r in read_runs(tmp_path / "out")] == ["ok", "ok"]
    # a different policy, a pin, or a changed article: the links are computed again
    other = batch(feed, tmp_path, policy=Policy(links=Links(k=3, min_score=None, min_reverse=None)))
    assert not other.outputs_reused and other.links == 30 * 3
    from recommender.rank.overrides import Overrides

    with Overrides.open(tmp_path / "idx") as store:
        store.pin("feed/0", "feed/7")
    pinned = batch(feed, tmp_path, policy=Policy(links=Links(k=3, min_score=None, min_reverse=None)))
    assert not pinned.outputs_reused and pinned.pinned_links == 1
    (tmp_path / "out" / "related.json").unlink()  # a damaged output folder is rewritten, not trusted
    repaired = batch(feed, tmp_path, policy=Policy(links=Links(k=3, min_score=None, min_reverse=None)))
    assert not repaired.outputs_reused and (tmp_path / "out" / "related.json").exists()
