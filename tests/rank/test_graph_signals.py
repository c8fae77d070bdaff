"""Signals from the link graphs (mentions, curated lists) and the embedding's hubness, against hand-computed
cases; a query's own curated list never feeds its own signals."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import sparse

from recommender.rank.graph_signals import LinkGraphs
from recommender.rank.signaltable import GRAPH_SIGNALS, graph_columns, graph_columns_many

VECTORS = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0.6, 0.8]], dtype=np.float32)
# 0 names 1 (weight 2), 2 names 0 (weight 1), 3 names 1 (weight 0.5)
MENTIONS = sparse.csr_matrix(np.array([[0, 2, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0.5, 0, 0]], np.float32))
LISTS = {0: [1, 2], 1: [0], 3: [2]}
Z = {"dense": np.array([1.0, 2.0, 3.0], np.float32), "lexical": np.array([1.0, 0.0, 1.0], np.float32)}


def facts(lists=LISTS):
    return LinkGraphs.build(VECTORS, SimpleNamespace(count=4, mentions=MENTIONS), lists)


def col(X, name):
    return X[:, GRAPH_SIGNALS.index(name)].tolist()


def test_each_graph_signal_against_a_hand_computed_case():
    rows = np.array([1, 2, 3])
    X = graph_columns(facts(), 0, rows, Z, VECTORS[rows] @ VECTORS[0])
    assert col(X, "names_out") == [2, 0, 0] and col(X, "names_in") == [0, 1, 0]
    assert col(X, "named_by") == pytest.approx([math.log(3), 0, 0])  # article 1 is named by 0 and 3
    # lists linking to 1: only 0's own (left out); to 2: 0's own and 3's
    assert col(X, "curated_in") == pytest.approx([0, math.log(2), 0])
    assert col(X, "curated_back") == [1, 0, 0]  # 1's list links to 0
    # lists holding both (each with its owner): 0 and 1 share 0's and 1's lists, 0's own left out
    assert col(X, "co_curated") == [1, 0, 0]
    # votes from the candidates' lists, weighted by max(0, mean z): 3 (strength 2) lists 2; 1 (strength 1) lists 0
    assert col(X, "neighbour_lists") == [0, 2, 0]
    for i, c in enumerate(rows):  # the cosine as a z-score over the candidate's own row (all articles)
        row = VECTORS @ VECTORS[c]
        assert X[i, GRAPH_SIGNALS.index("dense_rz")] == pytest.approx((row[0] - row.mean()) / row.std(), abs=1e-5)


def test_a_query_with_or_without_its_own_list_gets_the_same_signals():
    rows = np.array([1, 2, 3])
    cosine = VECTORS[rows] @ VECTORS[0]
    with_own = graph_columns(facts(), 0, rows, Z, cosine)
    without = graph_columns(facts({q: r for q, r in LISTS.items() if q != 0}), 0, rows, Z, cosine)
    assert np.array_equal(with_own, without)
    fold = facts().with_lists({3: [2]})  # cross-validation: the training folds' lists only
    assert col(graph_columns(fold, 0, rows, Z, cosine), "curated_back") == [0, 0, 0]


def test_new_text_has_only_the_hubness_signal():
    rows = np.array([0, 1])
    X = graph_columns(facts(), -1, rows, {"dense": np.array([1.0, 0.5], np.float32)}, np.array([0.9, 0.1], np.float32))
    assert not np.delete(X, GRAPH_SIGNALS.index("dense_rz"), axis=1).any()
    assert X[:, GRAPH_SIGNALS.index("dense_rz")].any()


def test_many_queries_at_once_give_each_query_its_own_columns():
    """columns_many (training, every query in one pass) equals columns query by query, own lists left out."""
    from recommender.rank.graph_signals import Pairs

    rng = np.random.default_rng(3)
    cands = {}
    for q in range(4):
        rows = np.array([r for r in range(4) if r != q])
        z = {"dense": rng.normal(size=3).astype(np.float32), "lexical": rng.normal(size=3).astype(np.float32)}
        cands[q] = SimpleNamespace(rows=rows, z=z, raw={"dense": VECTORS[rows] @ VECTORS[q]})
    queries = [3, 0, 1, 2]  # any order: the pairs follow it
    for graph in (facts(), facts().with_lists({3: [2], 1: [0]})):
        together = graph_columns_many(graph, Pairs.of(cands, queries))
        one_by_one = np.vstack([graph_columns(graph, q, cands[q].rows, cands[q].z, cands[q].raw["dense"])
                                for q in queries])
        assert together.any() and np.allclose(together, one_by_one, atol=1e-6)
