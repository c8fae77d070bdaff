"""The lexical index fitted in shards (the Ray engine's fit) equals the one-process fit, float for float."""

import numpy as np
import pytest

from recommender.ingest.reader import read_corpus
from recommender.store.lexindex import LexicalIndex
from recommender.store.lexshards import build_sharded, shard_count

from conftest import DEMO


def same_csr(a, b):
    return (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


def assert_same_index(a, b):
    assert b.vocabulary == a.vocabulary
    assert b.idf.dtype == a.idf.dtype and np.array_equal(b.idf, a.idf)
    assert same_csr(a.tfidf, b.tfidf)  # the entries' stored order too: products sum in it
    assert same_csr(a.mentions, b.mentions)
    assert b.name_weights == a.name_weights
    assert np.array_equal(a.doc_hashes, b.doc_hashes)
    assert b.found[0] == a.found[0] and same_csr(a.found[1], b.found[1])


@pytest.fixture(scope="module")
def demo_rows():
    articles = read_corpus(DEMO).articles
    ids, rows = [a.id for a in articles], [(a.title, a.excerpt, a.body) for a in articles]
    for i, a in enumerate(articles[:12]):  # pages that name others (the demo's texts name none)
        other = articles[-1 - i]
        ids.append(f"notes/{i}")
        rows.append((f"Notes {i}", "", f"See {a.title} and {other.title}; also {a.id.rsplit('/', 1)[-1]}."))
    return ids, rows


@pytest.mark.parametrize("shards", [1, 2, 5, 42])
def test_sharded_fit_equals_the_fit_on_the_demo_corpus(demo_rows, shards):
    ids, rows = demo_rows
    whole = LexicalIndex.build(ids, rows)
    assert len(whole.vocabulary) > 200 and whole.mentions.nnz > 0
    assert_same_index(whole, build_sharded(ids, rows, shards=shards))


@pytest.mark.parametrize("rows", [
    [("the", "", "and of the"), ("a", "", "is it")],  # stop words only: an empty index
    [("alpha", "", "beta gamma"), ("delta", "", "epsilon"), ("zeta", "", "eta theta")],  # fit without bounds
    [(f"w{i} common", "", f"t{i} shared z{i}") for i in range(6)],  # words in every document or in one
    [],
])
def test_sharded_fit_equals_the_fit_at_the_edges(rows):
    ids = [f"x/{i}" for i in range(len(rows))]
    whole = LexicalIndex.build(ids, rows)
    for shards in (1, 2, 4):
        sharded = build_sharded(ids, rows, shards=shards)
        assert sharded.vocabulary == whole.vocabulary and np.array_equal(sharded.idf, whole.idf)
        assert same_csr(whole.tfidf, sharded.tfidf) and same_csr(whole.mentions, sharded.mentions)


def test_shard_count():
    assert shard_count(500, 8) == 1 and shard_count(14_592, 2) == 4 and shard_count(1_000_000, 2) == 20
