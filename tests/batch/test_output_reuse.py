"""A night's outputs copy the records that did not change from the last run's files (batch/output_reuse.py): the
files are those a full write makes, and nothing is copied when the last outputs may not be the lists state's."""

import shutil
import sqlite3

import numpy as np
from listcheck import TOPICS, write_records

import recommender.batch.output_reuse as output_reuse
import recommender.batch.outputs as outputs
from recommender.batch.nightly import run_batch
from recommender.batch.outputs import ArticleLinks
from recommender.rank.policy import Policy

POLICY = Policy().with_links(k=5, min_score=None).with_section("batch", refit_drift=0.5)


def _records(n):
    rng = np.random.default_rng(4)
    return [{"id": f"doc/{i}", "title": f"{TOPICS[i % 5][i % 9].title()} notes {i}", "url": f"https://x.test/{i}/",
             "text": " ".join(rng.choice(TOPICS[i % 5], 30)) + " " + " ".join(rng.choice(TOPICS[(i * 3) % 5], 6))}
            for i in range(n)]


def _changed(records):
    rng = np.random.default_rng(5)
    records = [dict(r) for r in records]
    records[3]["text"] += " " + " ".join(rng.choice(TOPICS[1], 10))  # changed a little
    records[8]["title"] = "Renamed notes"  # its title changes in every list that links to it
    records[9]["url"] = "https://x.test/moved-9/"  # so does its URL, though no score moves
    del records[20]  # removed
    records.append({"id": "doc/new", "title": "Fresh notes", "url": "https://x.test/new/",
                    "text": " ".join(rng.choice(TOPICS[2], 36))})  # added
    return records


def _tables(out):
    with sqlite3.connect(out / "related.sqlite") as db:
        return (sorted(db.execute("SELECT * FROM articles")), sorted(db.execute("SELECT * FROM related")),
                [r[0] for r in db.execute("SELECT status FROM runs ORDER BY id")])


def _night(tmp_path, name, feed, monkeypatch, reuse: bool, tamper=None, patch: bool | None = None):
    """The night from a copy of the state after the first run: (output folder, records encoded)."""
    index, out = tmp_path / f"index-{name}", tmp_path / f"out-{name}"
    shutil.copytree(tmp_path / "index", index)
    shutil.copytree(tmp_path / "out", out)
    if tamper:
        tamper(out)
    encoded, patched = [], []
    real, real_patch = ArticleLinks.to_dict, outputs.patch_sqlite
    monkeypatch.setattr(ArticleLinks, "to_dict", lambda item: encoded.append(item.id) or real(item))
    monkeypatch.setattr(outputs, "patch_sqlite", lambda *a: patched.append(real_patch(*a)) or patched[-1])
    if not reuse:
        monkeypatch.setattr(output_reuse.Reuse, "of", classmethod(lambda cls, *a: None))
    record = run_batch(feed, index, out, POLICY, model="hashing", progress=False)
    monkeypatch.undo()
    assert record.status == "ok" and record.lists["kind"] == "incremental"
    assert patched == [reuse if patch is None else patch]  # related.sqlite patched, or made again
    return out, encoded


def _first(tmp_path):
    feed = tmp_path / "feed.jsonl"
    records = _records(60)
    write_records(feed, records)
    assert run_batch(feed, tmp_path / "index", tmp_path / "out", POLICY, model="hashing",
                     progress=False).status == "ok"
    write_records(feed, _changed(records))
    return feed


def test_a_night_copies_unchanged_records_and_writes_what_a_full_write_writes(tmp_path, monkeypatch):
    feed = _first(tmp_path)
    full, everything = _night(tmp_path, "full", feed, monkeypatch, reuse=False)
    night, encoded = _night(tmp_path, "reuse", feed, monkeypatch, reuse=True)
    assert len(everything) == 60  # every record's line
    assert encoded.count("doc/new") == 1 and len(encoded) < 45  # the others copied
    assert "doc/8" in encoded  # renamed: its own record changed
    for name in ("related.jsonl", "related.json", "related_by_path.json"):
        assert (night / name).read_bytes() == (full / name).read_bytes(), name
    assert _tables(night) == _tables(full)
    assert _tables(night)[2] == ["ok", "ok"]
    lines = (night / "related.jsonl").read_text().splitlines()
    for target, new in (("doc/8", "Renamed notes"), ("doc/9", "moved-9")):  # every list that links to them
        holding = [line for line in lines if f'"{target}"' in line]
        assert len(holding) > 1 and all(new in line for line in holding), target


def test_outputs_not_written_with_the_state_are_not_copied(tmp_path, monkeypatch):
    """The last good run's record names another lists state (a run killed between the state and its outputs),
    or a line of related.jsonl is not its article's: the records are written in full, and the files are the same."""
    feed = _first(tmp_path)
    full, everything = _night(tmp_path, "full", feed, monkeypatch, reuse=False)

    def other_state(out):
        with sqlite3.connect(out / "related.sqlite") as db:
            db.execute("UPDATE runs SET record = json_set(record, '$.lists_state', 'abc')")

    def swapped_lines(out):
        lines = (out / "related.jsonl").read_text().splitlines()
        lines[10], lines[11] = lines[11], lines[10]
        (out / "related.jsonl").write_text("\n".join(lines) + "\n")

    for name, tamper in (("state", other_state), ("lines", swapped_lines)):
        night, encoded = _night(tmp_path, name, feed, monkeypatch, reuse=True, tamper=tamper,
                                patch=name == "lines")  # the state is the outputs' there: the SQLite file patched
        assert (night / "related.jsonl").read_bytes() == (full / "related.jsonl").read_bytes(), name
        assert _tables(night)[:2] == _tables(full)[:2], name
        if name == "state":
            assert len(encoded) == len(everything)
        else:  # copied up to the swapped line (unless a changed record comes first), then written in full
            assert len(everything) - 12 <= len(encoded) < len(everything), len(encoded)


def test_the_file_holding_the_state_token_is_renamed_after_the_others(tmp_path, monkeypatch):
    """related.sqlite holds the run record with its lists state's token: renamed into place after every other
    output, so a run killed between renames leaves the last good record naming the old state (nothing copied)."""
    import os

    import recommender.common.atomic as atomic

    renamed = []
    real = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: renamed.append(os.path.basename(dst)) or real(src, dst))
    feed = _first(tmp_path)
    renamed.clear()
    assert run_batch(feed, tmp_path / "index", tmp_path / "out", POLICY, model="hashing",
                     progress=False).lists["kind"] == "incremental"
    outputs_renamed = [name for name in renamed if name in outputs.output_names()]
    assert sorted(outputs_renamed) == sorted(outputs.output_names())
    assert outputs_renamed[-1] == "related.sqlite", outputs_renamed
