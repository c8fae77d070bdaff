"""scripts/bench_scale.py's recombined corpus: prefix-stable, unique ids and titles, shards under the cap, read back
by the project's reader in the planned order."""

import importlib.util
import json
from pathlib import Path

import numpy as np

from recommender.ingest.reader import read_corpus

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "scripts" / "bench_scale.py")
bench_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_scale)

RECORDS = [{"id": f"Web/Topic_{i}", "title": f"Topic number {i} overview",
            "text": "\n\n".join(f"Paragraph {p} of topic {i} about elements and attributes." for p in range(4)),
            "url": f"https://example.org/docs/topic-{i}", "source": f"files/topic-{i}.md"} for i in range(5)]


def lines(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]


def test_corpus_is_prefix_stable_unique_and_read_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_scale, "SHARD_BYTES", 2000)
    words = bench_scale.distinguishing_words(RECORDS, seed=0)
    small = bench_scale.write_corpus(tmp_path / "small", 7, RECORDS, words, seed=0)
    large = bench_scale.write_corpus(tmp_path / "large", 13, RECORDS, words, seed=0)
    assert large["shards"] > 1 and small["shards"] >= 1
    assert all(p.stat().st_size <= 2000 for p in (tmp_path / "large").glob("*.jsonl"))
    got_small, got_large = lines(tmp_path / "small"), lines(tmp_path / "large")
    assert got_large[:7] == got_small  # article i is the same at every size
    assert len({r["id"] for r in got_large}) == 13 and len({r["title"] for r in got_large}) == 13
    bases, copies = bench_scale.plan(13, len(RECORDS), seed=0)
    assert sorted(bases[:5]) == list(range(5)) and list(copies) == [0] * 5 + [1] * 5 + [2] * 3
    for record, base, copy in zip(got_large, bases, copies):
        original = RECORDS[base]
        assert (record["id"] == original["id"]) == (copy == 0) and record["title"].startswith(original["title"])
        assert all(p in record["text"] for p in original["text"].split("\n\n"))  # the base's paragraphs, and more
        assert len(record["text"]) > len(original["text"])
    read = read_corpus(tmp_path / "large")
    assert not read.problems
    assert [a.id for a in read.articles] == [r["id"] for r in got_large]


def test_sample_rows_fixed_and_within_the_smallest_size():
    rows = bench_scale.sample_rows(1000, 50, seed=0)
    assert len(set(rows)) == 50 and rows.max() < 1000
    assert np.array_equal(rows, bench_scale.sample_rows(1000, 50, seed=0))
    assert set(bench_scale.sample_rows(1000, 20, seed=0)) <= set(rows)  # a smaller sample is part of a larger one


def test_windows_kept_in_a_file_are_quantised_as_in_memory(tmp_path, monkeypatch):
    """The windows bench_scale hands write_index as rows read from a file a block at a time (DiskRows) give the
    same window codes as the array itself (windowfiles.quantize reads them a block at a time)."""
    from recommender.store import windowfiles

    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float16)
    (tmp_path / "w.f16").write_bytes(vectors.tobytes())
    rows = bench_scale.DiskRows(tmp_path / "w.f16", vectors.shape, np.float16)
    assert len(rows) == 50 and np.array_equal(rows[7:19], vectors[7:19])
    monkeypatch.setattr(windowfiles, "QUANTIZE_BLOCK", 7)
    codes, scales = windowfiles.quantize(rows)
    expected_codes, expected_scales = windowfiles.quantize(vectors)
    assert np.array_equal(codes, expected_codes) and np.array_equal(scales, expected_scales)
