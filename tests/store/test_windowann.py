import json

import numpy as np
import pytest

from recommender import Index, IndexProblem, build_index
from recommender.rank import windowstage
from recommender.store import windowann, windowrecall
from recommender.store.manifest import MANIFEST_NAME
from recommender.store.compiledscores import stored_products
from recommender.store.windowann import WindowANN
from recommender.store.windowrecall import RecallCheck, exact_neighbours, tune_nprobe
from recommender.store.windowfiles import SEARCHED_EXACTLY, quantize, read_windows
from recommender.rank.windowsearch import ExactWindowSearch


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int = 32, centres: int = 40, seed: int = 5) -> np.ndarray:
    """Unit vectors around a few centres: neighbour structure an IVF index can miss when it probes too little."""
    rng = np.random.default_rng(seed)
    middle = unit(rng.normal(size=(centres, dim)))
    return unit(middle[rng.integers(0, centres, n)] + rng.normal(0, 0.35, (n, dim)))


@pytest.fixture(autouse=True)
def window_index_built(monkeypatch):
    """The fixture corpus has a few dozen windows, searched exactly (no window index is built up to
    windowstage.EXACT_WINDOW_SEARCH): here the threshold is lowered so that every build makes one."""
    monkeypatch.setattr(windowstage, "EXACT_WINDOW_SEARCH", 0)


@pytest.fixture
def ann_index(tmp_path, corpus_dir):
    """An index of the fixture corpus with its window index (the threshold lowered), that a test may change."""
    build_index(corpus_dir, tmp_path / "ann-index", model="hashing", progress=False)
    return tmp_path / "ann-index"


def brute_force(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), order


def test_flat_is_exact_against_brute_force():
    vectors = unit(np.random.default_rng(1).normal(size=(600, 32)))
    ann = WindowANN.build(vectors)
    assert not ann.approximate and ann.backend == "faiss-flat-ip" and ann.count == 600
    sims, ids = ann.search(vectors[:30], 20)
    ref_sims, ref_ids = brute_force(vectors[:30], vectors, 20)
    assert ids.dtype == np.int64 and np.array_equal(ids, ref_ids)
    assert np.allclose(sims, ref_sims, atol=1e-5)
    _, ids = ann.search(vectors[:2], 1000)  # k above the count: every window, no padding needed
    assert ids.shape == (2, 600) and (ids >= 0).all()


def test_exact_neighbours_in_blocks_equal_brute_force(monkeypatch):
    monkeypatch.setattr(windowann, "BLOCK", 64)  # several blocks, merged
    vectors = clustered(500)
    codes, scales = quantize(vectors)
    dequantised = codes.astype(np.float32) * scales[:, None]
    sims, ids = exact_neighbours(codes, scales, dequantised[:10], 15)
    ref_sims, ref_ids = brute_force(dequantised[:10], dequantised, 15)
    assert np.array_equal(ids, ref_ids) and np.allclose(sims, ref_sims, atol=1e-5)


def test_ivf_above_the_threshold_reaches_its_recall_against_brute_force(monkeypatch):
    monkeypatch.setattr(windowann, "FLAT_MAX", 1000)
    vectors = clustered(4000)
    assert not WindowANN.build(vectors[:1000]).approximate  # at the threshold: still exact
    ann = WindowANN.build(vectors)
    assert ann.approximate and ann.backend == "faiss-ivf-sq8"
    ann.nprobe = 1
    low = RecallCheck(vectors, None, k=50, queries=200).recall(ann)
    stats = tune_nprobe(ann, vectors, None, k=50, target=0.98, queries=200)
    assert stats["window_ann_nprobe"] == ann.nprobe > 1 and stats["window_ann_nlist"] == ann.index.nlist
    assert stats["window_ann_recall@50"] >= 0.98 > low
    # the recorded recall, checked independently: each query's 50 nearest others by brute force
    rows = np.random.default_rng(9).choice(len(vectors), 100, replace=False)
    _, exact = brute_force(vectors[rows], vectors, 51)
    _, found = ann.search(vectors[rows], 51)
    hits = [len(set(e[e != q][:50]) & set(f[f != q][:50])) for q, e, f in zip(rows, exact, found)]
    assert sum(hits) / (50 * len(rows)) >= 0.97


@pytest.mark.parametrize("flat_max", [10_000, 100])
def test_save_and_load_round_trip(tmp_path, flat_max):
    vectors = clustered(2000)
    ann = WindowANN.build(vectors, flat_max=flat_max)
    if ann.approximate:
        ann.nprobe = 7
    path = tmp_path / "windowann.faiss"
    ann.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["windowann.faiss"]  # no temporary left behind
    for mmap in (True, False):
        loaded = WindowANN.load(path, mmap=mmap)
        assert (loaded.approximate, loaded.count, loaded.nprobe) == (ann.approximate, 2000, ann.nprobe)
        for got, want in zip(loaded.search(vectors[:25], 30), ann.search(vectors[:25], 30)):
            assert np.array_equal(got, want)


def test_load_refuses_another_faiss_index(tmp_path):
    import faiss

    faiss.write_index(faiss.IndexFlatL2(8), str(tmp_path / "l2.faiss"))
    with pytest.raises(ValueError, match="not a window index"):
        WindowANN.load(tmp_path / "l2.faiss")


def test_up_to_the_exact_search_threshold_no_window_index_is_built(tmp_path, monkeypatch, corpus_dir):
    """Every search of a site with at most EXACT_WINDOW_SEARCH windows reads the stored windows (WindowStage.ann):
    no window index is built, and a rebuild does not count its absence as an index from before it."""
    import shutil

    built = []
    monkeypatch.setattr(windowann.WindowANN, "from_codes", lambda *a, **k: built.append(1) or None)
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    monkeypatch.setattr(windowstage, "EXACT_WINDOW_SEARCH", 10_000)
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    with Index.open(tmp_path / "idx") as index:
        manifest = index.data.manifest
        assert "window_ann" not in manifest.files and manifest.stats["window_ann"] == SEARCHED_EXACTLY
        assert 0 < manifest.stats["windows"] <= 10_000 and built == []
        assert index.data.window_ann() is None and index.data.window_ann(approximate_only=True) is None
        assert isinstance(index.ranker().window_stage().ann, ExactWindowSearch)
        lists = {i: [(r.id, r.score) for r in index.related(i, k=3)] for i in index.data.store.ids()}
    monkeypatch.undo()  # the same corpus with a (flat) window index, really built
    monkeypatch.setattr(windowstage, "EXACT_WINDOW_SEARCH", 0)
    build_index(corpus, tmp_path / "with-ann", model="hashing", progress=False)
    with Index.open(tmp_path / "with-ann") as index:
        assert "window_ann" in index.data.manifest.files
        assert lists == {i: [(r.id, r.score) for r in index.related(i, k=3)] for i in index.data.store.ids()}
    assert any(lists.values())
    monkeypatch.setattr(windowstage, "EXACT_WINDOW_SEARCH", 10_000)
    report = build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    assert not report.rewritten and not list((tmp_path / "idx").glob("windowann-*"))


def test_built_index_stores_the_window_index_of_its_stored_windows(ann_index):
    with Index.open(ann_index) as index:
        manifest = index.data.manifest
        assert "window_ann" in manifest.files and manifest.stats["window_ann"] == "faiss-flat-ip"
        ann = index.data.window_ann()
        codes, scales, offsets = read_windows(ann_index, manifest)
        assert ann.count == len(codes) == manifest.stats["windows"] > 0
        stored = codes.astype(np.float32) * scales[:, None]
        sims, ids = ann.search(stored, 5)
        ref_sims, ref_ids = brute_force(stored, stored, 5)
        assert np.allclose(sims, ref_sims, atol=1e-5)
        assert np.allclose(np.einsum("wkd,wd->wk", stored[ids], stored), sims, atol=1e-5)  # ids name those windows


def test_index_built_with_ivf_records_its_recall(tmp_path, monkeypatch, corpus_dir):
    monkeypatch.setattr(windowann, "FLAT_MAX", 0)
    build_index(corpus_dir, tmp_path / "idx", model="hashing", progress=False)
    with Index.open(tmp_path / "idx") as index:
        ann = index.data.window_ann()
        assert ann.approximate and index.data.manifest.stats["window_ann"] == "faiss-ivf-sq8"
        stats = index.data.manifest.stats
        k = min(windowrecall.RECALL_K, stats["windows"] - 1)  # k clamped to the others
        assert stats[f"window_ann_recall@{k}"] == 1.0  # one list
        assert ann.count == index.data.manifest.stats["windows"]


def test_damaged_missing_or_absent_window_index(ann_index):
    index_copy = ann_index
    manifest = json.loads((index_copy / MANIFEST_NAME).read_text())
    path = index_copy / manifest["files"]["window_ann"]["name"]
    data = path.read_bytes()
    damaged = bytearray(data)
    damaged[-5] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(IndexProblem, match="window_ann file does not match its checksum"):
        Index.open(index_copy)
    path.write_bytes(data[:100])  # a truncated file that the stat check would let through: read refused
    with pytest.raises(IndexProblem, match="cannot read the window index"):
        Index.open(index_copy, verify=False).data.window_ann()
    path.unlink()
    with pytest.raises(IndexProblem, match="window_ann file is missing"):
        Index.open(index_copy)
    del manifest["files"]["window_ann"]  # an index built before the window index
    (index_copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    with Index.open(index_copy) as index:
        assert index.data.window_ann() is None


def test_rebuild_replaces_the_window_index_and_removes_the_old_one(ann_index, tmp_path, corpus_dir):
    import shutil

    index_copy = ann_index
    old = json.loads((index_copy / MANIFEST_NAME).read_text())["files"]["window_ann"]["name"]
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    (corpus / "text" / "extra.txt").write_text("Tide pools\n\nStarfish and anemones live in tide pools.\n")
    build_index(corpus, index_copy, model="hashing", progress=False)
    with Index.open(index_copy) as index:
        assert index.data.manifest.files["window_ann"].name != old
        assert index.data.window_ann().count == index.data.manifest.stats["windows"]
    assert [p.name for p in index_copy.glob("windowann-*.faiss")] == [index.data.manifest.files["window_ann"].name]


def test_a_new_version_reuses_the_training_of_the_last_when_it_suits(tmp_path, monkeypatch):
    from recommender.store.windowann import reusable_training

    monkeypatch.setattr(windowann, "FLAT_MAX", 1000)
    vectors = clustered(4000)
    first = WindowANN.build(vectors)
    first.save(tmp_path / "first.faiss")
    changed = np.concatenate([vectors[100:], clustered(150, seed=6)])  # 100 windows gone, 150 new, rows shifted
    trained = reusable_training(tmp_path / "first.faiss", *changed.shape)
    assert trained is not None and trained.ntotal == 0
    second = WindowANN.from_codes(changed, None, trained=trained)
    centroids = first.index.quantizer.reconstruct_n(0, first.index.nlist)
    assert np.array_equal(second.index.quantizer.reconstruct_n(0, second.index.nlist), centroids)
    assert second.count == len(changed)
    assert tune_nprobe(second, changed, None, k=50, target=0.98, queries=200)["window_ann_recall@50"] >= 0.98
    # what does not suit: another dimension, four times the windows (twice the lists), a flat index
    assert reusable_training(tmp_path / "first.faiss", len(changed), 16) is None
    assert reusable_training(tmp_path / "first.faiss", 16_000, 32) is None
    WindowANN.build(vectors[:500]).save(tmp_path / "flat.faiss")
    assert reusable_training(tmp_path / "flat.faiss", *changed.shape) is None


def _ivf_index(tmp_path, monkeypatch, corpus_dir):
    """(a copy of the corpus, the stats of an index built from it at tmp_path/idx) with the window index an IVF
    whose kept training is never refused for recall."""
    import shutil

    monkeypatch.setattr(windowann, "FLAT_MAX", 0)
    monkeypatch.setattr(windowrecall, "RECALL_KEEP", 0.0)
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    return corpus, Index.open(tmp_path / "idx").data.manifest.stats


def test_rebuild_with_ivf_reuses_the_training_and_keeps_its_nprobe(tmp_path, monkeypatch, corpus_dir):
    corpus, first = _ivf_index(tmp_path, monkeypatch, corpus_dir)
    assert first["window_ann_training"] == "new"
    (corpus / "text" / "extra.txt").write_text("Tide pools\n\nStarfish and anemones live in tide pools.\n")
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    with Index.open(tmp_path / "idx") as index:
        stats = index.data.manifest.stats
        assert stats["window_ann_training"] == "reused" and stats["window_ann_nprobe"] == first["window_ann_nprobe"]
        assert stats["window_ann_key"] == first["window_ann_key"] == index.data.window_ann().training_key
        assert index.data.window_ann().count == index.data.manifest.stats["windows"]


def test_ivf_search_is_the_same_alone_or_in_a_batch_and_a_subset_finds_what_it_would(monkeypatch):
    """Each window's list and each query's probed lists are exact (windowann.Coarse), so a query finds the same
    windows with the same similarities alone or among others, and an index of some windows with the same
    training finds, with the same similarities, exactly those of them the full index's search can find."""
    monkeypatch.setattr(windowann, "FLAT_MAX", 1000)
    vectors = clustered(4000)
    ann = WindowANN.build(vectors)
    ann.nprobe = 4
    queries = clustered(60, seed=9)
    sims, ids = ann.search(queries, 4000)  # every window in the probed lists
    for q in range(0, 60, 7):
        alone = ann.search(queries[q:q + 1], 4000)
        assert np.array_equal(alone[0], sims[q:q + 1]) and np.array_equal(alone[1], ids[q:q + 1])
    some = np.arange(3000, 4000)
    sub_sims, sub_ids = ann.subset(vectors[some], some).search(queries, 1000)
    assert ann.subset(vectors[some], some).training_key == ann.training_key
    for q in range(60):
        found = ids[q] >= 3000
        got = sub_ids[q] >= 0
        assert np.array_equal(sub_ids[q][got], ids[q][found]) and np.array_equal(sub_sims[q][got], sims[q][found])
        assert 0 < got.sum() < len(some)  # the probed lists hold some of them, not all


def test_default_tuning_takes_the_smallest_nprobe_finding_its_share_of_the_nearest_windows(monkeypatch):
    """nprobe is tuned on each query window's RECALL_K (10) nearest windows, the ones the articles that rank come
    in by, to RECALL_TARGET (0.975): the smallest of NPROBES that reaches it, checked here by brute force."""
    monkeypatch.setattr(windowann, "FLAT_MAX", 1000)
    vectors = clustered(4000, centres=150)
    ann = WindowANN.build(vectors)
    stats = tune_nprobe(ann, vectors, None, queries=200)
    chosen = stats["window_ann_nprobe"]
    assert set(stats) - {"window_ann_recall_ceiling"} == {"window_ann_recall@10", "window_ann_nprobe",
                                                          "window_ann_nlist", "window_ann_recall_queries"}
    # missed from CEILING_FROM on, the search of every list was measured: the target is at most that less the margin
    goal = min(windowrecall.RECALL_TARGET, stats.get("window_ann_recall_ceiling", 1.0) - windowrecall.CEILING_MARGIN)
    assert chosen > windowrecall.NPROBES[0]  # the smallest tried misses: the choice is a measured one
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), 200, replace=False))  # RecallCheck's queries
    _, exact = brute_force(vectors[rows], vectors, 11)

    def recall(nprobe):
        ann.nprobe = nprobe
        _, found = ann.search(vectors[rows], 11)
        return sum(len(set(e[e != q][:10]) & set(f[f != q][:10])) for q, e, f in zip(rows, exact, found)) / 2000

    assert recall(chosen) >= goal and stats["window_ann_recall@10"] >= goal and 0.975 == windowrecall.RECALL_TARGET
    assert recall(windowrecall.NPROBES[windowrecall.NPROBES.index(chosen) - 1]) < goal  # the one before misses


def test_near_copies_the_codes_cannot_tell_apart_do_not_drive_nprobe_to_its_largest(tmp_path, monkeypatch):
    """Near-copies of windows (a passage repeated with small changes; bench_scale's jittered copies, 68 of each
    window at 1M articles) are closer to each other than the IVF's 8-bit codes tell apart, so its 10 nearest among
    them are not the exact 10 at any nprobe. The tuning measures that ceiling (a search of every list) and asks
    CEILING_MARGIN below it: the smallest nprobe, not the largest; a night keeping that training keeps it."""
    from recommender.embed.vectorize import Windows
    from recommender.store.windowfiles import write_window_ann, write_windows

    monkeypatch.setattr(windowann, "FLAT_MAX", 1000)
    rng = np.random.default_rng(3)
    vectors = unit(np.repeat(unit(rng.normal(size=(250, 32))), 20, axis=0) + rng.normal(0, 0.01, (5000, 32)))
    entries = write_windows(tmp_path, "a", Windows(vectors, np.arange(0, 5001, 5)))
    _, first = write_window_ann(tmp_path, "a", entries)
    codes, scales, _ = (np.load(tmp_path / entries[f"windows:{name}"].name) for name in ("codes", "scales", "offsets"))
    ann = WindowANN.load(tmp_path / "windowann-a.faiss")
    check = RecallCheck(codes, scales)
    recalls = {}
    for nprobe in (4, 16, first["window_ann_nlist"]):
        ann.nprobe = nprobe
        recalls[nprobe] = check.recall(ann)
    assert max(recalls.values()) < windowrecall.RECALL_KEEP  # more lists find no more: the codes miss, not the lists
    assert first["window_ann_nprobe"] == windowrecall.NPROBES[0] and first["window_ann_recall@10"] == recalls[4]
    _, night = write_window_ann(tmp_path, "b", entries, previous=tmp_path / "windowann-a.faiss")
    assert night["window_ann_training"] == "reused" and night["window_ann_nprobe"] == windowrecall.NPROBES[0]
    assert night["window_ann_key"] == first["window_ann_key"]
    ceiling = recalls[first["window_ann_nlist"]]
    assert first["window_ann_recall_ceiling"] == night["window_ann_recall_ceiling"] == ceiling


@pytest.mark.parametrize("compiled", ["", "heap", "heap, 8-bit screen"])
def test_coarse_lists_screened_in_float32_are_the_exact_ones_ties_to_the_lower_list(monkeypatch, compiled):
    """From SCREEN_LISTS lists on, a query's lists are screened by float32 products and the screened ones
    multiplied again in float64: the m best by the float64 products rounded to float32, ties to the lower list
    (also across the screen's edge, where the proof fails and every product is taken in float64), the same
    whatever the batch a query comes in; the same with the screen's selection in a compiled loop
    (store.compiledtopk, which takes ties at the edge its own way), and with a few queries screened against 8-bit
    centroids (its wider bound)."""
    import faiss

    from recommender.store import coarse as coarse_module
    from recommender.store import compiledtopk

    if compiled:
        pytest.importorskip("numba")
        assert compiledtopk.rows_top_kernel() is not None and compiledtopk._kernel("window_products") is not None
    monkeypatch.setitem(compiledtopk.ACTIVE, "rows_top", compiledtopk.rows_top_kernel() if compiled else None)
    monkeypatch.setitem(compiledtopk.ACTIVE, "window_products", compiledtopk._kernel("window_products")
                        if "8-bit" in compiled else None)
    monkeypatch.setattr(coarse_module, "SCREEN_LISTS", 100)
    rng = np.random.default_rng(3)
    centroids = unit(rng.normal(size=(600, 64)))
    centroids[:30] = centroids[30]  # 31 equal lists: more than a screen holds at m = 4 (16)
    centroids[300:303] = centroids[303]
    queries = unit(rng.normal(size=(400, 64)))
    centroids[100:140] = unit(centroids[140] + 0.003 * rng.normal(size=(40, 64)))  # 41 near ties: more than a
    # screen holds, closer than the 8-bit centroids' error, so that screen's order among them is noise
    queries[:3] = centroids[30]
    queries[3:6] = centroids[303] + 0.01 * queries[3:6]
    queries[6:12] = unit(centroids[140] + 0.001 * rng.normal(size=(6, 64)))
    quantizer = faiss.IndexFlatIP(64)
    quantizer.add(centroids)
    coarse = coarse_module.Coarse(quantizer)
    exact = (queries.astype(np.float64) @ centroids.astype(np.float64).T).astype(np.float32)
    for m in (1, 4, 8):
        lists, sims = coarse.best(queries, m)
        want = np.argsort(-exact, axis=1, kind="stable")[:, :m]  # the lower list first among equal products
        assert np.array_equal(lists, want) and np.array_equal(sims, np.take_along_axis(exact, want, 1))
        for a in (0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100):
            alone = coarse.best(queries[a:a + 1], m)
            assert np.array_equal(alone[0], lists[a:a + 1]) and np.array_equal(alone[1], sims[a:a + 1])
        few = coarse.best(queries[:coarse_module.FEW_QUERIES], m)  # a query by id's few windows
        assert np.array_equal(few[0], lists[:coarse_module.FEW_QUERIES])
    assert np.array_equal(coarse.best(queries[:1], 4)[0][0], [0, 1, 2, 3])
    if "8-bit" in compiled:  # the bound holds for every list: the screen is within it of the exact product
        codes, scales, on_l2, on_l1 = coarse.eight
        few = queries[:coarse_module.FEW_QUERIES]
        screen = stored_products(compiledtopk.ACTIVE["window_products"], codes, None, few) * scales
        exact = few.astype(np.float64) @ centroids.astype(np.float64).T
        q64 = few.astype(np.float64)
        room = on_l2 * np.linalg.norm(q64, axis=1) + on_l1 * np.abs(q64).sum(axis=1)
        assert (np.abs(screen - exact) <= room[:, None]).all()
        assert (np.abs(screen - exact).max(axis=1) > room / 20).all()  # and it is not loose by far


def test_a_new_version_reads_the_lists_of_its_unchanged_windows_off_the_last_one(tmp_path, monkeypatch):
    """Under a kept training a window's list depends on its vector alone: the windows the last version held keep
    theirs (read off its index, kept_lists), the others are assigned; the index is the one assigning every window
    builds, byte for byte."""
    import faiss

    from recommender.store.windowann import kept_lists, reusable_training

    monkeypatch.setattr(windowann, "FLAT_MAX", 1000)
    old_codes, old_scales = quantize(clustered(4000))
    WindowANN.from_codes(old_codes, old_scales).save(tmp_path / "old.faiss")
    fresh = quantize(clustered(150, seed=6))
    codes = np.concatenate([old_codes[100:2000], fresh[0], old_codes[2000:]])  # 100 gone, 150 new, rows shifted
    scales = np.concatenate([old_scales[100:2000], fresh[1], old_scales[2000:]])
    scales[5] = np.nextafter(scales[5], np.float32(1))  # the same codes at another scale: another vector
    lists = kept_lists(tmp_path / "old.faiss", old_codes, old_scales, codes, scales)
    assert lists is not None and (lists[1900:2050] == -1).all() and lists[5] == -1
    assert (lists[np.r_[0:5, 6:1900, 2050:len(lists)]] >= 0).all()
    coarse = WindowANN.load(tmp_path / "old.faiss").coarse
    exact = coarse.best(codes.astype(np.float32) * scales[:, None], 1)[0][:, 0]
    assert np.array_equal(lists[lists >= 0], exact[lists >= 0])
    trained = [reusable_training(tmp_path / "old.faiss", *codes.shape) for _ in range(2)]
    read = WindowANN.from_codes(codes, scales, trained=trained[0], lists=lists)
    assigned = WindowANN.from_codes(codes, scales, trained=trained[1])
    assert np.array_equal(faiss.serialize_index(read.index), faiss.serialize_index(assigned.index))
    # an index over other windows than those given (their count) tells nothing
    assert kept_lists(tmp_path / "old.faiss", old_codes[1:], old_scales[1:], codes, scales) is None


def test_a_kept_training_carries_its_recall_until_the_windows_changed_since_reach_the_drift(tmp_path, monkeypatch,
                                                                                            corpus_dir):
    """A rebuild keeping the IVF's training and nprobe does not measure its recall again (the exact neighbours of
    500 windows: most of a night's window index) while few windows changed since the last measure: the recall is
    the last version's, the churn counted, the index file the same as a measured one's; past the drift it is
    measured again (churn back to 0)."""
    corpus, first = _ivf_index(tmp_path, monkeypatch, corpus_dir)
    assert first["window_ann_recall_churn"] == 0
    import shutil

    shutil.copytree(tmp_path / "idx", tmp_path / "measured")
    (corpus / "text" / "extra.txt").write_text("Tide pools\n\nStarfish and anemones live in tide pools.\n")
    monkeypatch.setattr(windowrecall, "RECALL_DRIFT", 0.25)
    measures = []
    monkeypatch.setattr(windowrecall, "tune_nprobe", lambda *a, **k: measures.append(1) or tune_nprobe(*a, **k))
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    assert measures == []  # carried, not measured
    monkeypatch.setattr(windowrecall, "RECALL_DRIFT", 0.0)
    build_index(corpus, tmp_path / "measured", model="hashing", progress=False)
    assert measures == [1]
    carried = Index.open(tmp_path / "idx").data.manifest.stats
    measured = Index.open(tmp_path / "measured").data.manifest.stats
    added = carried["windows"] - first["windows"]
    assert added > 0 and carried["window_ann_recall_churn"] == added and measured["window_ann_recall_churn"] == 0
    assert carried["window_ann_training"] == "reused" == measured["window_ann_training"]

    def recall(stats):  # the window index's figures but its timing and the churn
        return {k: v for k, v in stats.items() if k.startswith("window_ann_") and k not in (
            "window_ann_seconds", "window_ann_recall_churn", "window_ann_training")}

    assert recall(carried) == recall(first) and recall(first)["window_ann_recall@10"] > 0
    files = [json.loads((tmp_path / name / MANIFEST_NAME).read_text())["files"]["window_ann"]["name"]
             for name in ("idx", "measured")]
    assert (tmp_path / "idx" / files[0]).read_bytes() == (tmp_path / "measured" / files[1]).read_bytes()
    manifest = json.loads((tmp_path / "idx" / MANIFEST_NAME).read_text())  # a recall of another k: measured
    manifest["stats"]["window_ann_recall@50"] = manifest["stats"].pop("window_ann_recall@10")
    (tmp_path / "idx" / MANIFEST_NAME).write_text(json.dumps(manifest))
    monkeypatch.setattr(windowrecall, "RECALL_DRIFT", 10.0)  # any churn would carry a recall@10
    (corpus / "text" / "extra.txt").write_text("Tide pools\n\nSea stars and anemones live in tide pools.\n")
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    stats = Index.open(tmp_path / "idx").data.manifest.stats
    assert measures == [1, 1] and stats["window_ann_recall_churn"] == 0 and "window_ann_recall@50" not in stats


def test_a_carried_recall_keeps_the_ceiling_measured_with_it(tmp_path, monkeypatch, corpus_dir):
    """The recall ceiling measured with a figure (windowrecall.keep_floor reads it) is carried with the figure: without
    it, a kept training whose recall is under RECALL_KEEP but at its ceiling (near-copies) would be refused on the
    next measure and trained anew."""
    corpus, _ = _ivf_index(tmp_path, monkeypatch, corpus_dir)
    manifest = json.loads((tmp_path / "idx" / MANIFEST_NAME).read_text())
    manifest["stats"]["window_ann_recall_ceiling"] = 0.5
    (tmp_path / "idx" / MANIFEST_NAME).write_text(json.dumps(manifest))
    monkeypatch.setattr(windowrecall, "RECALL_DRIFT", 10.0)  # carried
    (corpus / "text" / "extra.txt").write_text("Tide pools\n\nStarfish and anemones live in tide pools.\n")
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    stats = Index.open(tmp_path / "idx").data.manifest.stats
    assert stats["window_ann_training"] == "reused" and stats["window_ann_recall_ceiling"] == 0.5
