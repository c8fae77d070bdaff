"""The links phase's faster paths against the paths they replace, number for number: the top-k from a sampled
floor (ties to the lowest columns), window pairs read from the exact search's products, TF-IDF values and sample
sums in SciPy's loops, and the two-stage ranking with and without the search's products."""

from dataclasses import replace

import numpy as np
import pytest

from recommender.rank import candidates as stage
from recommender.rank import windowstage
from recommender.rank import windows as window_module
from recommender.rank.candidates import LexicalStage
from recommender.rank.windowsearch import ExactWindowSearch
from recommender.rank.windowstage import WindowStage
from recommender.rank.topk import top_columns

from test_two_stage import corpus, rankers  # noqa: F401  (the fixture corpus of the two-stage tests)


def lowest_first(scores: np.ndarray, k: int) -> list[set]:
    """Each row's k best columns by a full sort, ties to the lower column."""
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)
    return [set(row[:k]) for row in order]


@pytest.mark.parametrize("k", [1, 7, 40, 299, 300])
def test_top_columns_are_those_of_a_full_sort_ties_to_the_lowest_columns(k):
    rng = np.random.default_rng(k)
    ties = rng.integers(0, 30, size=(20, 3000)).astype(np.float32)  # many values tied with each k-th
    spread = rng.normal(size=(20, 3000)).astype(np.float32)
    for scores in (ties, spread):
        for stride in (2, 8):  # the sampled floor (n >= 8 x stride x k) and the whole row
            got = top_columns(scores, k, stride=stride)
            assert got.shape == (20, min(k, 3000))
            assert [set(row) for row in got] == lowest_first(scores, k)


def test_window_pairs_from_the_search_products_equal_the_gathered_products(corpus):
    _, windows, _ = corpus
    codes = np.concatenate([windows.windows_of(q)[0] for q in (3, 4)])
    scales = np.concatenate([windows.windows_of(q)[1] for q in (3, 4)])
    sims, ids, products = ExactWindowSearch(windows).search_codes(codes, scales, 25, products=True)
    assert np.array_equal((sims, ids), ExactWindowSearch(windows).search_codes(codes, scales, 25))
    first = len(windows.windows_of(3)[0])
    rows = np.array([0, 3, 5, 77, 120, 299])
    for q, mine in ((3, products[:first]), (4, products[first:])):
        want = windows.pairs(*windows.windows_of(q), rows)
        got = windows.pairs_from(mine, windows.positions(rows))
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_an_exact_search_with_a_k_for_each_window_is_each_window_s_own_search(corpus):
    _, windows, _ = corpus
    search = ExactWindowSearch(windows)
    codes, scales = windows.exact_codes()[:7], windows.scales[:7]
    wanted = np.array([3, 25, 25, 1, 9, 3, 5000])  # 5000: more than there are windows
    sims, ids = search.search_codes(codes, scales, wanted)
    for i, k in enumerate(wanted):
        own_sims, own_ids = search.search_codes(codes[i:i + 1], scales[i:i + 1], int(k))
        k = min(int(k), search.count)
        assert np.array_equal(ids[i, :k], own_ids[0]) and np.array_equal(sims[i, :k], own_sims[0])
        assert (ids[i, k:] == -1).all() and (sims[i, k:] == -np.inf).all()


@pytest.mark.parametrize("block", [3, 256])
def test_window_pairs_converted_by_blocks_equal_one_product_of_the_gathered_windows(corpus, monkeypatch, block):
    monkeypatch.setattr(window_module, "PAIR_BLOCK", block)
    _, windows, _ = corpus
    rows = np.array([299, 0, 5, 77, 120, 3, 4])
    queries = [windows.windows_of(q) for q in (3, 4, 250)]
    want_all = windows.pairs_many(queries, windows.gather(rows))
    # the rows, their windows' positions, or their 8-bit codes gathered (a query by id's sample)
    for given in (rows, windows.positions(rows), windows.gather(rows, convert=False)):
        for got, want in zip(windows.pairs_many(queries, given), want_all):
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_lexical_values_and_statistics_in_scipy_equal_the_numpy_steps(corpus, monkeypatch):
    monkeypatch.setattr(stage, "LEXICAL_SAMPLE", 120)  # the sample a real subset
    _, _, lexical = corpus
    plain = LexicalStage(lexical.csr_arrays(), lexical.count, lexical.vocabulary_size)
    fast = LexicalStage(lexical.csr_arrays(), lexical.count, lexical.vocabulary_size, matrix=lexical.tfidf)
    rows = np.array([299, 0, 5, 17, 120, 121, 3])
    for q in range(0, 300, 23):
        terms, weights = plain.row(q)
        top = plain.pool(terms, weights, 20)[:2]
        assert np.array_equal(fast.values(terms, weights, rows), plain.values(terms, weights, rows))
        assert fast.stats(terms, weights, top) == plain.stats(terms, weights, top)


def test_lexical_values_given_known_cosines_compute_only_the_others(corpus):
    _, _, lexical = corpus
    lex = LexicalStage(lexical.csr_arrays(), lexical.count, lexical.vocabulary_size)
    rows = np.array([299, 0, 5, 17, 120, 121, 3])
    for q in range(0, 300, 23):
        terms, weights = lex.row(q)
        known = np.array([121, 5, 250]), np.array([7.0, 8.0, 9.0], np.float32)  # marked: not cosines
        got, want = lex.values(terms, weights, rows, known=known), lex.values(terms, weights, rows)
        assert list(got[[2, 5]]) == [8.0, 7.0]  # the known ones as given
        keep = np.ones(len(rows), bool)
        keep[[2, 5]] = False
        assert np.array_equal(got[keep], want[keep])  # the others computed


def test_candidates_from_the_lists_heads_reuse_the_pools_cosines_with_the_same_numbers(corpus, monkeypatch):
    # the lists' heads' pool (ImpactTopK) has its cosines from `values`; a query's candidates' values are given them
    # instead of computing them again: every candidate's numbers the same as computed afresh
    monkeypatch.setattr(stage, "EXACT_POSTINGS", 0)  # every query's lexical pool from the lists' heads
    monkeypatch.setattr(windowstage, "WINDOW_SAMPLE", 120)
    rows = np.arange(0, 300, 7)
    _, two = rankers(corpus, candidates=20)
    reused = two.score_rows(rows)
    plain_values = LexicalStage.values
    monkeypatch.setattr(LexicalStage, "values", lambda self, terms, weights, rows, known=None:
                        plain_values(self, terms, weights, rows))
    _, plain = rankers(corpus, candidates=20)
    assert not plain.lexical_stage().exact_pool(plain.lexical_stage().row(0)[0])
    for a, b in zip(reused, plain.score_rows(rows)):
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.score, b.score)
        for part in b.raw:
            assert np.array_equal(a.raw[part], b.raw[part]) and np.array_equal(a.z[part], b.z[part])


@pytest.mark.parametrize("cells", [ExactWindowSearch.CELLS, 40])
def test_the_ranking_from_the_search_products_is_the_ranking_without_them(corpus, monkeypatch, cells):
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 60)  # window pools real subsets, statistics from samples
    monkeypatch.setattr(windowstage, "MIN_PER_WINDOW", 12)
    monkeypatch.setattr(windowstage, "WINDOW_SAMPLE", 120)
    monkeypatch.setattr(ExactWindowSearch, "CELLS", cells)  # 40: a run of queries at a time, a query per product
    rows = np.arange(0, 300, 7)
    _, two = rankers(corpus, candidates=20)
    assert two.window_stage().keeps_products
    with_products = two.score_rows(rows)
    monkeypatch.setattr(WindowStage, "keeps_products", property(lambda self: False))
    _, plain = rankers(corpus, candidates=20)
    for a, b in zip(with_products, plain.score_rows(rows)):
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.score, b.score)
        for part in b.raw:
            assert np.array_equal(a.raw[part], b.raw[part]) and np.array_equal(a.z[part], b.z[part])


def test_the_dense_pool_is_the_exact_top(corpus):
    vectors, _, _ = corpus
    _, two = rankers(corpus, candidates=3)
    found = two.dense_candidates(vectors[:50], 4)
    assert [set(row) for row in found] == lowest_first(vectors[:50] @ vectors.T, 4)


def test_a_query_by_id_scores_the_window_sample_from_its_codes_with_the_batchs_numbers(corpus, monkeypatch):
    # a few query windows (a query by id) multiply the sample's 8-bit codes a block at a time, not a float copy of
    # every sample window gathered for it (12 MB read a query at 2,048 sample articles); the batch's blocks still
    # multiply the float copy once; each query's candidates the same numbers either way
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 60)
    monkeypatch.setattr(windowstage, "MIN_PER_WINDOW", 12)
    monkeypatch.setattr(windowstage, "WINDOW_SAMPLE", 120)
    monkeypatch.setattr(WindowStage, "keeps_products", property(lambda self: False))  # the IVF path's pairs
    rows = np.arange(0, 300, 7)
    _, batch = rankers(corpus, candidates=20)
    monkeypatch.setattr(windowstage, "FEW_QUERY_WINDOWS", 0)  # every block multiplies the float copy
    whole = batch.score_rows(rows)
    assert batch.window_stage()._sample_windows is not None
    monkeypatch.setattr(windowstage, "FEW_QUERY_WINDOWS", 64)
    _, single = rankers(corpus, candidates=20)
    for row, b in zip(rows, whole):
        a = single.score_rows(np.array([row]))[0]
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.score, b.score)
        for part in b.raw:
            assert np.array_equal(a.raw[part], b.raw[part]) and np.array_equal(a.z[part], b.z[part])
    assert single.window_stage()._sample_windows is None  # no float copy made
    assert single.window_stage()._sample_codes is not None  # its 8-bit codes gathered once
