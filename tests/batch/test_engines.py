"""The engine interface without Ray: the local engine's blocks, and one clear line when Ray is asked for but
not installed (the Ray engine itself is tested in test_ray.py)."""

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from recommender.rank.allpairs import LinkRules, all_pairs_topk, related_block
from recommender.store.ann import FlatIndex
from recommender.batch.nightly import BatchError, run_batch
from recommender.cli import cli
from recommender.batch.engines import RAY_EXTRA_MISSING, EngineError, LocalEngine, get_engine
from recommender.common.blocks import blocks, ranges


def test_blocks_cover_the_range_once():
    assert blocks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert blocks(0, 4) == []
    with pytest.raises(ValueError):
        blocks(5, 0)


def test_ranges_are_the_positions_of_each_range_end_to_end():
    rng = np.random.default_rng(2)
    begins, lengths = rng.integers(0, 1000, 50), rng.integers(0, 6, 50)
    want = [p for b, n in zip(begins, lengths) for p in range(b, b + n)]
    got = ranges(begins, lengths)
    assert got.dtype == np.int64 and got.tolist() == want
    assert ranges(np.zeros(0), np.zeros(0)).tolist() == []


def test_local_engine_maps_blocks_in_order():
    seen = []
    parts = LocalEngine().map_blocks(lambda shared, a, b: shared[a:b], list(range(7)), 7, 3,
                                     progress=seen.append)
    assert parts == [[0, 1, 2], [3, 4, 5], [6]] and seen == [3, 3, 1]


def test_all_pairs_blocks_agree_with_one_block():
    """Block boundaries change nothing: every block is computed by the same module-level function."""
    vectors = np.random.default_rng(5).standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FlatIndex.build(vectors)
    rules = LinkRules(k=4, min_score=0.1)
    small = all_pairs_topk(index, vectors, rules, block=32)
    whole = all_pairs_topk(index, vectors, rules, block=1000)
    assert np.array_equal(small[1], whole[1]) and np.allclose(small[0], whole[0], equal_nan=True)
    assert not (whole[1] == np.arange(300)[:, None]).any()  # never linked to itself
    job_part = LocalEngine().map_blocks(related_block, _job(index, vectors, rules), 300, 64)
    assert np.array_equal(np.concatenate([p[1] for p in job_part]), whole[1])


def _job(index, vectors, rules):
    from recommender.rank.allpairs import PairsJob

    return PairsJob(index=index, vectors=vectors, rules=rules, facts=None, as_of_day=0.0,
                    first_depth=min(len(vectors), 4 * rules.k + 16), exact_rescore=False)


def test_unknown_engine_and_address_without_ray():
    with pytest.raises(EngineError, match="unknown engine"):
        get_engine("spark")
    with pytest.raises(EngineError, match="only for --engine ray"):
        get_engine("local", address="auto")


def test_ray_engine_without_ray_is_one_clear_line(tmp_path, monkeypatch, corpus_dir):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is not installed
    with pytest.raises(EngineError) as caught:
        get_engine("ray")
    assert str(caught.value) == RAY_EXTRA_MISSING
    with pytest.raises(BatchError, match="needs the ray extra"):
        run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", model="hashing", progress=False, engine="ray")
    assert not (tmp_path / "idx").exists() and not (tmp_path / "out").exists()  # nothing touched
    result = CliRunner().invoke(cli, ["batch", str(corpus_dir), "--index", str(tmp_path / "idx"), "--out",
                                      str(tmp_path / "out"), "--model", "hashing", "--engine", "ray", "-q"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: {RAY_EXTRA_MISSING}"


def test_local_batch_records_its_engine(tmp_path, corpus_dir):
    record = run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", model="hashing", progress=False)
    assert record.engine == "local" and record.status == "ok"
