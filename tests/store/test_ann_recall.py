"""The approximate index's recall against exact search: measured at build time, recorded, shown by `info`."""

import json

import numpy as np

import recommender.batch.build
from recommender import Index, build_index
from recommender.store.ann import FlatIndex, IVFIndex, build_for_size, measure_recall
from recommender.store.manifest import read_manifest


def clustered(n, dim=32, centres=40, seed=0):
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dim))
    vectors = middle[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_exact_index_has_recall_one_and_ivf_is_measured():
    vectors = clustered(4000)
    flat = measure_recall(FlatIndex.build(vectors), vectors, queries=300)
    assert flat == {"ann_recall@10": 1.0, "ann_recall@10_rescored": 1.0, "ann_recall_queries": 300}
    ivf = IVFIndex.build(vectors, nprobe=1)  # one list of 40 per query: it must miss neighbours
    measured = measure_recall(ivf, vectors, queries=300)
    assert 0.2 < measured["ann_recall@10"] < 1.0
    assert measured["ann_recall@10_rescored"] >= measured["ann_recall@10"]
    ivf.index.nprobe = ivf.index.nlist  # every list: only the 8-bit codes still differ from exact
    assert measure_recall(ivf, vectors, queries=300)["ann_recall@10_rescored"] == 1.0


def test_build_records_recall_of_an_ivf_index(tmp_path, monkeypatch):
    words = "orbit bread goal solar river piano forest engine garden castle".split()
    lines = []
    for i in range(600):
        text = " ".join(words[(i * 7 + j * (1 + i % 5)) % 10] + str((i + j) % 13) for j in range(30))
        lines.append(json.dumps({"id": f"a/{i}", "title": f"story {i}", "text": text}))
    (tmp_path / "feed.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(recommender.batch.build, "build_for_size", lambda v: build_for_size(v, flat_max=100))
    build_index(tmp_path / "feed.jsonl", tmp_path / "idx", model="hashing", progress=False)
    manifest = read_manifest(tmp_path / "idx")
    assert manifest.backend == "faiss-ivf-sq8"
    assert manifest.stats["ann_recall_queries"] == 600
    assert 0.0 < manifest.stats["ann_recall@10"] <= manifest.stats["ann_recall@10_rescored"] <= 1.0
    with Index.open(tmp_path / "idx") as index:  # what `recommender info` prints
        assert index.info()["ann_recall@10"] == manifest.stats["ann_recall@10"]


def test_exact_index_records_no_recall(tmp_path, corpus_dir):
    build_index(corpus_dir, tmp_path / "idx", model="hashing", progress=False)
    assert not any(key.startswith("ann_") for key in read_manifest(tmp_path / "idx").stats)
