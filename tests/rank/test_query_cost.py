"""What a query by id computes: only what its list reads, with the same numbers as the whole corpus's figures
(docs/scale.md, "A query by id: what it still computed over the corpus")."""

import numpy as np
import pytest

from recommender.rank.corpusstats import Standing
from recommender.rank.corpusstats import dense_moments


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_an_articles_standing_is_the_same_numbers_whichever_rows_are_asked_with_it():
    rng = np.random.default_rng(3)
    # the model's dimension; a shared direction gives a mean cosine near MDN's (0.15)
    vectors = unit(rng.normal(size=(3000, 384)) + 0.4 * rng.normal(size=(1, 384)))
    mean, second = dense_moments(vectors)
    whole = Standing(vectors, mean, second).every()
    # the previous whole-corpus figures, to float rounding (the mean was a BLAS product: its last bit differs)
    old_mean = vectors @ mean
    old_std = np.sqrt(np.maximum(np.einsum("nd,nd->n", vectors @ second, vectors) - old_mean ** 2, 1e-12))
    np.testing.assert_allclose(whole[0], old_mean, atol=1e-6)
    np.testing.assert_allclose(whole[1], old_std, rtol=1e-5)
    for size in (1, 2, 3, 7, 64, 129, 700):  # a single row goes through the same product as several
        rows = rng.choice(3000, size, replace=False)
        standing = Standing(vectors, mean, second)
        got = standing.of(rows)
        assert np.array_equal(got[0], whole[0][rows]) and np.array_equal(got[1], whole[1][rows])
        assert standing._known.sum() == size  # only those rows were made
        again = standing.of(np.concatenate([rows[:2], rows[:1]]))  # kept, repeats allowed
        assert np.array_equal(again[0], whole[0][np.concatenate([rows[:2], rows[:1]])])
    for row in rng.choice(3000, 60, replace=False):  # one row at a time (a product of one row is another kernel's)
        got = Standing(vectors, mean, second).of([row])
        assert got[0][0] == whole[0][row] and got[1][0] == whole[1][row]


def test_a_query_by_id_makes_the_standing_of_the_rows_it_links_only(hashing_index, tmp_path):
    from recommender import Index
    from recommender.rank.policy import Policy

    with Index.open(hashing_index) as index:
        policy = Policy()
        assert policy.links.min_reverse is not None and index.learned_model(policy) is None
        ids = index.data.store.ids()
        index.related(ids[0], k=3, policy=policy)
        known = index.ranker(policy).standing()._known
        assert 0 < known.sum() < len(ids)


def test_the_radix_order_is_a_stable_sorts_permutation():
    from recommender.rank.topk import stable_order

    rng = np.random.default_rng(5)
    for high in (1, 300, 1 << 16, 70_000, 1 << 31):  # one pass, two passes, ties within each half
        keys = rng.integers(0, high, 50_000)
        assert np.array_equal(stable_order(keys), np.argsort(keys, kind="stable"))
    for keys in (np.array([], np.int64), np.array([3, -1, 3, 0]), np.array([1 << 33, 5, 1 << 33])):
        assert np.array_equal(stable_order(keys), np.argsort(keys, kind="stable"))


def test_a_learned_query_makes_its_signals_once_and_shows_their_parts(tmp_path, monkeypatch):
    from recommender import Index
    from recommender.rank import learned

    from test_learned_query import ON, trained

    trained(tmp_path)
    made = []
    real, block = learned.signal_matrix, learned.block_signals  # one query's, or a block of stored queries'
    monkeypatch.setattr(learned, "signal_matrix", lambda *args: made.append(1) or real(*args))
    monkeypatch.setattr(learned, "block_signals", lambda *args: made.append(1) or block(*args))
    with Index.open(tmp_path / "idx") as index:
        article = index.data.store.ids()[5]
        related = index.related(article, policy=ON)
        assert len(made) == 1  # by the learned ranking; the parts shown read them (they were made twice)
        model = index.learned_model(ON)
        cand = index.ranker(ON).score_rows(np.array([index.data.get(article).row]))[0]
        signals = real(cand, index.data.article_features(), index.data.link_graphs(model))  # in shown order
        at = {int(r): i for i, r in enumerate(cand.rows)}
        rows = {i: r for r, i in enumerate(index.data.store.ids())}
        assert related and all(item.parts["learned"] == model.contributions(signals[at[rows[item.id]]])
                               for item in related)


def test_a_verified_index_is_opened_without_counting_its_articles(hashing_index, monkeypatch):
    from recommender import Index, IndexProblem
    from recommender.store.metadata import MetadataStore

    counted = []
    real = MetadataStore.count
    monkeypatch.setattr(MetadataStore, "count", lambda self: counted.append(1) or real(self))
    with Index.open(hashing_index) as index:  # its files checked against the manifest: the count is its
        assert counted == [] and len(index) == real(index.data.store)
    Index.open(hashing_index, verify=False).close()  # nothing checked: counted, and compared
    assert counted == [1]
    monkeypatch.setattr(MetadataStore, "count", lambda self: 1)
    with pytest.raises(IndexProblem, match="articles, manifest says"):
        Index.open(hashing_index, verify=False)
