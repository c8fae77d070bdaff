"""The Ray engine against the local engine, on a local Ray instance of two CPUs: same outputs, a shared vector
cache, and a worker killed mid-run that costs a retry, not the run. Skipped when Ray is not installed."""

import json
import math
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install '.[ray]' runs these")

from recommender.rank.policy import Policy  # noqa: E402
from recommender.batch.nightly import run_batch  # noqa: E402
from recommender.batch.engines import LocalEngine, get_engine  # noqa: E402
from recommender.batch.outputs import read_jsonl, read_runs  # noqa: E402
from recommender.batch.ray_engine import FAULT_ENV  # noqa: E402

from conftest import DEMO  # noqa: E402

pytestmark = pytest.mark.ray

RULES = Policy().with_links(k=5)


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def links(folder):
    """{id: [(related id, score), ...]} from a batch's related.jsonl, failing on a repeated article."""
    out = {}
    for item in read_jsonl(folder):
        assert item["id"] not in out, f"{item['id']} written twice"
        out[item["id"]] = [(r["id"], r["score"]) for r in item["related"]]
    return out


def assert_same_links(a, b, tolerance=1e-4):
    assert sorted(a) == sorted(b)
    for key in a:
        assert [i for i, _ in a[key]] == [i for i, _ in b[key]], key
        assert all(math.isclose(x, y, abs_tol=tolerance) for (_, x), (_, y) in zip(a[key], b[key])), key


def batch(tmp_path, name, engine, index=None, **kwargs):
    record = run_batch(DEMO, index or tmp_path / f"{name}-index", tmp_path / f"{name}-out", RULES,
                       progress=False, engine=engine, **kwargs)
    assert record.status == "ok" and record.engine == engine
    assert read_runs(tmp_path / f"{name}-out")[-1]["engine"] == engine
    return record


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The local engine's batch of the demo corpus with the real model (default backend)."""
    folder = tmp_path_factory.mktemp("local")
    record = batch(folder, "local", "local")
    return folder, record


@pytest.mark.model
def test_ray_outputs_equal_local_outputs(tmp_path, local_run):
    folder, local = local_run
    remote = batch(tmp_path, "ray", "ray")  # its own empty cache: Ray embeds every article
    assert remote.embedded == remote.articles == local.articles > 0
    assert remote.model_fingerprint == local.model_fingerprint
    assert_same_links(links(folder / "local-out"), links(tmp_path / "ray-out"))
    as_map = json.loads((tmp_path / "ray-out" / "related.json").read_text())
    assert as_map == json.loads((folder / "local-out" / "related.json").read_text())


@pytest.mark.model
def test_engines_share_the_vector_cache(tmp_path, local_run):
    folder, local = local_run
    remote = batch(tmp_path, "ray", "ray", index=folder / "local-index")  # the local engine's index and cache
    assert remote.embedded == 0 and remote.reused == local.articles
    assert_same_links(links(folder / "local-out"), links(tmp_path / "ray-out"))


@pytest.mark.model
def test_local_engine_reuses_vectors_embedded_by_ray(tmp_path, local_run):
    folder, _ = local_run
    first = batch(tmp_path, "ray", "ray")
    assert first.embedded == first.articles
    second = batch(tmp_path, "local", "local", index=tmp_path / "ray-index")
    assert second.embedded == 0 and second.reused == first.articles
    assert_same_links(links(tmp_path / "ray-out"), links(tmp_path / "local-out"))


@pytest.mark.model
def test_killed_worker_costs_a_retry_not_the_run(tmp_path, local_run, monkeypatch):
    folder, local = local_run
    marker = tmp_path / "kill-once"
    marker.write_text("the first Ray worker to delete this file exits\n")
    monkeypatch.setenv(FAULT_ENV, str(marker))
    remote = batch(tmp_path, "ray", "ray")
    assert not marker.exists(), "no worker died: the fault was not injected"
    assert remote.embedded == local.articles
    result = links(tmp_path / "ray-out")  # each article exactly once
    assert len(result) == local.articles
    assert_same_links(links(folder / "local-out"), result)


def block_sums(shared, start, stop):
    """A toy block function: row sums of the block and their indices."""
    return shared[start:stop].sum(axis=1), np.arange(start, stop)


def test_map_blocks_equal_between_engines(tmp_path, monkeypatch):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module
    shared = np.random.default_rng(3).standard_normal((1000, 8))
    local = LocalEngine().map_blocks(block_sums, shared, len(shared), 96)
    engine = get_engine("ray")
    marker = tmp_path / "kill-once"
    marker.write_text("x")
    monkeypatch.setenv(FAULT_ENV, str(marker))  # one block's worker dies; its task is retried
    try:
        seen = []
        remote = engine.map_blocks(block_sums, shared, len(shared), 96, progress=seen.append)
        assert engine.map_blocks(block_sums, shared, 0, 96) == []
    finally:
        engine.close()
    assert not marker.exists()
    assert len(remote) == len(local) == 11 and sum(seen) == 1000
    for (a, rows_a), (b, rows_b) in zip(local, remote):
        assert np.array_equal(rows_a, rows_b) and np.array_equal(a, b)


def test_ray_batch_with_test_embedder_equals_local(tmp_path):
    local = batch(tmp_path, "local", "local", model="hashing")
    remote = batch(tmp_path, "ray", "ray", model="hashing")
    assert remote.embedded == local.embedded == local.articles
    assert_same_links(links(tmp_path / "local-out"), links(tmp_path / "ray-out"), tolerance=1e-6)


def test_reading_and_lexical_fit_in_ray_shards_equal_local(tmp_path, monkeypatch):
    """The Ray engine's read (parts of a JSONL file and groups of files, one task's worker killed) and its
    sharded lexical fit give the local reader's corpus and hashes and LexicalIndex.build's index."""
    from recommender.batch.shardread import read_sharded
    from recommender.ingest.reader import read_corpus
    from recommender.store.lexindex import LexicalIndex
    from recommender.store.lexshards import build_sharded

    from test_shardread import assert_same_corpus, write_messy_corpus

    corpus = write_messy_corpus(tmp_path / "corpus")
    marker = tmp_path / "kill-once"
    marker.write_text("x")
    monkeypatch.setenv(FAULT_ENV, str(marker))
    engine = get_engine("ray")
    try:
        read = read_sharded(corpus, engine.map_shards, tmp_path / "prepared.sqlite", shard_bytes=200)
        articles = read_corpus(DEMO).articles
        ids, rows = [a.id for a in articles], [(a.title, a.excerpt, a.body) for a in articles]
        sharded = build_sharded(ids, rows, engine.map_shards, 3)
    finally:
        engine.close()
    assert not marker.exists()
    assert_same_corpus(read_corpus(corpus), *read)
    whole = LexicalIndex.build(ids, rows)
    assert sharded.vocabulary == whole.vocabulary and np.array_equal(sharded.idf, whole.idf)
    for a, b in ((whole.tfidf, sharded.tfidf), (whole.mentions, sharded.mentions)):
        assert all(np.array_equal(getattr(a, key), getattr(b, key)) for key in ("indptr", "indices", "data"))
