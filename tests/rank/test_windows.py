"""The window-level score: against a brute-force reference, across block boundaries, the same numbers in a query
and in the batch, stored with the index (checksummed), and what it is for: a shared section of two long pages."""

import json

import numpy as np
import pytest

from recommender import Index, build_index
from recommender.rank import windows as windows_module
from recommender.rank.windows import WindowScores, pair_scores
from recommender.store.manifest import IndexProblem


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_windows(seed=0, n=40, dim=12):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 9, size=n)
    vectors = unit(rng.normal(size=(int(counts.sum()), dim))).astype(np.float16)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return vectors, offsets


def brute_force(vectors, offsets, query_windows):
    own = [vectors[offsets[i]:offsets[i + 1]].astype(np.float32) for i in range(len(offsets) - 1)]
    return np.array([pair_scores(query_windows, w) for w in own], dtype=np.float32)


@pytest.mark.parametrize("block", [7, 16, 16_384])  # articles straddle blocks of 7 and 16 windows
def test_rows_equal_the_brute_force_mean_max(monkeypatch, block):
    monkeypatch.setattr(windows_module, "BLOCK_WINDOWS", block)
    vectors, offsets = random_windows()
    scores = WindowScores(vectors, offsets)
    rows = np.array([0, 5, 17, 39])
    got = scores.rows(rows)
    for i, row in enumerate(rows):
        expected = brute_force(vectors, offsets, vectors[offsets[row]:offsets[row + 1]].astype(np.float32))
        np.testing.assert_allclose(got[i], expected, atol=1e-6)
        assert got[i, row] == pytest.approx(1.0, abs=1e-3)  # an article matches itself window for window
    text = unit(np.random.default_rng(9).normal(size=(3, vectors.shape[1])))
    np.testing.assert_allclose(scores.row_of_windows(text), brute_force(vectors, offsets, text), atol=1e-6)


def test_the_score_is_symmetric_and_a_copy_in_the_batch_gives_the_same_bits():
    vectors, offsets = random_windows(seed=3)
    mapped, batch = WindowScores(vectors, offsets), WindowScores(vectors, offsets, keep_float32=True)
    rows = np.arange(len(offsets) - 1)
    a, b = mapped.rows(rows), batch.rows(rows)
    assert np.array_equal(a, b)  # a query (block by block from the file) and the batch (one float32 copy)
    np.testing.assert_allclose(a, a.T, atol=1e-6)


def test_an_article_without_windows_is_refused():
    with pytest.raises(ValueError, match="at least one window"):
        WindowScores(np.zeros((2, 4), np.float16), np.array([0, 2, 2]))


def write_long_pages(folder):
    """Two long pages sharing one section among ten unrelated ones, a third page on that section's words spread
    thin, and filler pages."""
    rng = np.random.default_rng(4)
    vocab = [f"w{i:03d}" for i in range(600)]

    def section():
        return " ".join(rng.choice(vocab, 150))

    shared = " ".join(f"tide{i} harbour{i} ferry{i}" for i in range(50))
    rows = [{"id": "a", "title": "Page A", "text": " ".join([section() for _ in range(10)] + [shared])},
            {"id": "b", "title": "Page B", "text": " ".join([shared] + [section() for _ in range(10)])}]
    rows += [{"id": f"f{i}", "title": f"Filler {i}", "text": " ".join(section() for _ in range(3))}
             for i in range(12)]
    path = folder / "pages.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_shared_section_of_two_long_pages_is_found_by_the_window_score(tmp_path):
    corpus = write_long_pages(tmp_path)
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    with Index.open(tmp_path / "idx") as index:
        windows = index.window_scores()
        a = index.get("a").row
        row = windows.rows(np.array([a]))[0]
        others = [index.get(x).row for x in index.store.ids() if x != "a"]
        assert index.store.ids()[max(others, key=lambda r: row[r])] == "b"
        cand = index.ranker().score_rows(np.array([a]))[0]
        b = index.get("b").row
        i = int(np.flatnonzero(cand.rows == b)[0])
        assert cand.z["window"][i] > cand.z["dense"][i]  # the window part stands out where the mean blurs
        assert index.manifest.stats["windows"] == len(windows.vectors) == int(windows.offsets[-1])


def test_stored_windows_are_checksummed_and_a_changed_file_is_refused(tmp_path):
    corpus = write_long_pages(tmp_path)
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    folder = tmp_path / "idx"
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["files"]["windows:vectors"]
    path = folder / entry["name"]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexProblem, match="windows:vectors"):
        Index.open(folder)
