"""The learned ranking's arrays made at build with bounded memory (learneddata.write_learned_data: the mentions the
lexical index's own matrix, not a copy; their transpose written by blocks of rows; the cosine statistics by blocks
of rows) hold the bytes the one-piece construction wrote: the graph facts built in full (a copied M, M.T.tocsr()),
every row's statistics at once, each array saved with np.save (the statistics to float32 rounding when a block
holds under a quarter of the rows; up to 262,144 articles they are all computed at once, as before). And the
corpus moments summed over blocks of rows (corpusstats.dense_moments) equal the one float64 product up to float64
rounding, and are that product up to a block."""

import numpy as np
import pytest

from recommender.common.blocks import gram64
from recommender.ingest.reader import read_corpus
from recommender.rank import corpusstats, graph_signals, learneddata
from recommender.rank.learned import LearnedModel, graph_facts
from recommender.store import mentionmatrix
from recommender.store.lexindex import LexicalIndex
from recommender.store.npyfiles import write_npy_files

from conftest import DEMO


def one_piece(folder, model, vectors, lexical, ids, moments):
    """The arrays as the build wrote them before the blocks, each saved whole."""
    graph = graph_facts(vectors, lexical, model, ids, moments)
    graph.mentions = graph.mentions.copy()  # as before: a copy of the lexical matrix (astype copied)
    graph.dense_stats_of(np.arange(len(ids)))
    arrays = {"params": np.array([model.mean, model.scale, model.coef], dtype=np.float64)}
    for name in learneddata.GRAPHS:
        matrix = getattr(graph, name)
        arrays.update({f"{name}_data": matrix.data, f"{name}_indices": matrix.indices, f"{name}_indptr": matrix.indptr})
    arrays.update({name: getattr(graph, name) for name in learneddata.VECTORS})
    return write_npy_files(folder, "whole", learneddata.PREFIX, arrays)


@pytest.fixture(scope="module")
def demo():
    """The demo corpus's lexical index (its texts name each other), vectors and a model with curated lists."""
    articles = read_corpus(DEMO).articles
    ids, rows = [a.id for a in articles], [(a.title, a.excerpt, a.body) for a in articles]
    for i, a in enumerate(articles[:30]):  # pages naming two articles each
        ids.append(f"notes/{i}")
        rows.append((f"Notes {i}", "", f"See {a.title} and {articles[-1 - i].title}."))
    lexical = LexicalIndex.build(ids, rows)
    vectors = np.random.default_rng(0).normal(size=(len(ids), 16)).astype(np.float32)
    lists = {ids[i]: [ids[(i + 3) % len(ids)], ids[(i + 7) % len(ids)]] for i in range(0, len(ids), 2)}
    model = LearnedModel(signals=["cosine"], mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0, lists=lists)
    return model, vectors, lexical, ids, corpusstats.dense_moments(vectors)


@pytest.mark.parametrize("block", [1, 5, 10**9])
def test_learned_arrays_by_blocks_hold_the_one_piece_bytes(demo, tmp_path, block, monkeypatch):
    model, vectors, lexical, ids, moments = demo
    assert lexical.mentions.nnz > 10 and (lexical.mentions != lexical.mentions.T).nnz  # not symmetric
    expected = one_piece(tmp_path, model, vectors, lexical, ids, moments)
    monkeypatch.setattr(mentionmatrix, "BOTH_BLOCK", block)
    monkeypatch.setattr(graph_signals, "DENSE_STATS_BLOCK", block)
    got, _ = learneddata.write_learned_data(tmp_path, model, "x", vectors, lexical, ids, moments)
    shared = {learneddata.PREFIX + name: name for name in learneddata.SHARED}  # M: the lexical index's own
    assert list(got) == [role for role in expected if role not in shared]  # the same roles, in the same order
    for role, name in shared.items():  # what it held: the lexical matrix's arrays, byte for byte
        held, own = np.load(tmp_path / expected[role].name), getattr(lexical.mentions, name.split("_")[1])
        assert held.dtype == own.dtype and np.array_equal(held, own)
    for role in got:
        same = (tmp_path / got[role].name).read_bytes() == (tmp_path / expected[role].name).read_bytes()
        if role == "learned:dense_stats" and block < len(ids) // 4:  # a block's products: float32 rounding
            assert np.allclose(np.load(tmp_path / got[role].name), np.load(tmp_path / expected[role].name),
                               rtol=1e-5, atol=1e-6)
        else:  # up to a quarter of the rows a block computes every row at once, as before
            assert same, role


def test_dense_moments_by_blocks():
    vectors = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    mean, second = corpusstats.dense_moments(vectors)
    whole = (vectors.T.astype(np.float64) @ vectors.astype(np.float64)) / 50  # the one product, as before
    assert np.array_equal(second, whole.astype(np.float32)) and np.array_equal(mean, vectors.mean(axis=0))
    wide = vectors.astype(np.float64)  # the graph facts' product: one float64 copy, as before
    assert np.array_equal(gram64(vectors, one_copy=True), wide.T @ wide)
    for block in (1, 7, 49):
        _, blocked = corpusstats.dense_moments(vectors, block)
        assert np.allclose(blocked, second, rtol=1e-6, atol=1e-7)
        assert np.allclose(gram64(vectors, block, one_copy=True), wide.T @ wide, rtol=1e-12)
    _, empty = corpusstats.dense_moments(np.zeros((0, 16), np.float32))
    assert empty.shape == (16, 16) and not empty.any()
