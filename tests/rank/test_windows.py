"""The window-level score: against a brute-force reference, across block boundaries, the same numbers in a query
and in the batch, stored with the index (8-bit, checksummed), and what it is for: a shared section of two long
pages."""

import json

import numpy as np
import pytest

from recommender import Index, build_index
from recommender.rank import windows as windows_module
from recommender.rank.windows import WindowScores, pair_scores
from recommender.store.manifest import IndexProblem
from recommender.store.windowfiles import quantize


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_windows(seed=0, n=40, dim=12):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 9, size=n)
    vectors = unit(rng.normal(size=(int(counts.sum()), dim))).astype(np.float16)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return vectors, offsets


def stored(vectors):
    """The window vectors as the index keeps them (8-bit codes times their scale)."""
    codes, scales = quantize(vectors)
    return codes.astype(np.float32) * scales[:, None]


def brute_force(vectors, offsets, query_windows):
    kept = stored(vectors)
    own = [kept[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    return np.array([pair_scores(stored(query_windows), w) for w in own], dtype=np.float32)


@pytest.mark.parametrize("block", [7, 16, 16_384])  # articles straddle blocks of 7 and 16 windows
def test_rows_equal_the_brute_force_mean_max(monkeypatch, block):
    monkeypatch.setattr(windows_module, "BLOCK_WINDOWS", block)
    vectors, offsets = random_windows()
    scores = WindowScores.from_vectors(vectors, offsets)
    rows = np.array([0, 5, 17, 39])
    got = scores.rows(rows)
    for i, row in enumerate(rows):
        expected = brute_force(vectors, offsets, vectors[offsets[row]:offsets[row + 1]].astype(np.float32))
        np.testing.assert_allclose(got[i], expected, atol=1e-6)
        assert got[i, row] == pytest.approx(1.0, abs=1e-2)  # an article matches itself (8-bit codes: ~1)
    text = unit(np.random.default_rng(9).normal(size=(3, vectors.shape[1])))
    np.testing.assert_allclose(scores.text_rows(text)[0][0], brute_force(vectors, offsets, text), atol=1e-6)


def test_a_row_is_the_same_bits_alone_or_in_any_group(monkeypatch):
    monkeypatch.setattr(windows_module, "GROUP_WINDOWS", 9)  # groups of a few queries
    vectors, offsets = random_windows(seed=3, n=60, dim=64)
    offsets[1] = 1  # article 0 has a single window: alone it is a one-row product
    offsets = np.concatenate(([0], np.maximum.accumulate(offsets[1:])))
    vectors = vectors[:offsets[-1]]
    mapped = WindowScores.from_vectors(vectors, offsets)
    batch = WindowScores.from_vectors(vectors, offsets, keep_copy=True)
    rows = np.arange(len(offsets) - 1)
    grouped, grouped_max = batch.rows(rows, with_max=True)  # the batch: groups, one float32 copy
    for row in rows:  # a query: alone, block by block from the mapped float16 file
        alone, alone_max = mapped.rows(np.array([row]), with_max=True)
        assert np.array_equal(alone[0], grouped[row]) and np.array_equal(alone_max[0], grouped_max[row]), row
    np.testing.assert_allclose(grouped, grouped.T, atol=1e-6)
    np.testing.assert_allclose(grouped_max, grouped_max.T, atol=1e-6)


@pytest.mark.parametrize("dim", [384, 12])
def test_the_compiled_window_products_give_the_numpy_pairs_bit_for_bit(monkeypatch, dim):
    # store.compiledscores adds in its own order (fast-math): exact only because every partial sum is a whole
    # number, then scales and takes the maxima in NumPy's roundings; the pairs (window scores, max-sim) must be
    # NumPy's, from the candidates' positions, from 8-bit codes gathered once (a query by id's sample) and for two
    # queries at once
    from recommender.store import compiledtopk

    loops = ("window_products", "window_maxima")
    if any(compiledtopk._kernel(name) is None for name in loops):
        pytest.skip("numba cannot build the loops here")
    vectors, offsets = random_windows(seed=5, n=300, dim=dim)
    scores = WindowScores.from_vectors(vectors, offsets)
    scores.codes[:7] = 127  # the largest products (127 x 127 x dim) and a long run of equal ones
    scores.codes[7:9] = -127
    answers = {}
    for compiled in (False, True):
        rng = np.random.default_rng(6)  # the same candidates both ways
        for name in loops:
            monkeypatch.setitem(compiledtopk.ACTIVE, name, compiledtopk._kernel(name) if compiled else None)
        got = []
        for q in (0, 3, 77, 299):
            query = scores.windows_of(q)
            rows = np.sort(rng.choice(300, 40, replace=False)) if q else np.arange(300)
            got.append(scores.pairs(*query, rows))
            got.append(scores.pairs(*query, scores.gather(rows, convert=False)))
            got.extend(scores.pairs_many([query, scores.windows_of(q + 1 if q < 299 else 1)], rows))
        answers[compiled] = got
    for (numpy_score, numpy_max), (score, best) in zip(answers[False], answers[True]):
        assert np.array_equal(numpy_score, score) and np.array_equal(numpy_max, best)
        assert numpy_score.dtype == score.dtype == np.float32


def test_an_article_without_windows_is_refused():
    with pytest.raises(ValueError, match="at least one window"):
        WindowScores.from_vectors(np.ones((2, 4), np.float16), np.array([0, 2, 2]))


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
        windows = index.data.window_scores()
        a = index.data.get("a").row
        row = windows.rows(np.array([a]))[0]
        others = [index.data.get(x).row for x in index.data.store.ids() if x != "a"]
        assert index.data.store.ids()[max(others, key=lambda r: row[r])] == "b"
        cand = index.ranker().score_rows(np.array([a]))[0]
        b = index.data.get("b").row
        i = int(np.flatnonzero(cand.rows == b)[0])
        assert cand.z["window"][i] > cand.z["dense"][i]  # the window part stands out where the mean blurs
        assert index.data.manifest.stats["windows"] == len(windows.codes) == int(windows.offsets[-1])


def test_stored_windows_are_checksummed_and_a_changed_file_is_refused(tmp_path):
    corpus = write_long_pages(tmp_path)
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    folder = tmp_path / "idx"
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["files"]["windows:codes"]
    path = folder / entry["name"]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexProblem, match="windows:codes"):
        Index.open(folder)


def test_wide_vectors_are_summed_in_float64_and_stay_exact():
    vectors, offsets = random_windows(seed=5, n=12, dim=1100)  # 1100 x 127 x 127 is above 2^24
    mapped = WindowScores.from_vectors(vectors, offsets)
    batch = WindowScores.from_vectors(vectors, offsets, keep_copy=True)
    assert mapped.exact is np.float64 and WindowScores.from_vectors(*random_windows()).exact is np.float32
    rows = np.arange(len(offsets) - 1)
    grouped = batch.rows(rows)
    assert all(np.array_equal(mapped.rows(np.array([r]))[0], grouped[r]) for r in rows)
    np.testing.assert_allclose(grouped[3], brute_force(vectors, offsets, vectors[offsets[3]:offsets[4]]), atol=1e-5)
