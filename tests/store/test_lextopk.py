"""PostingsTopK: the exact top-k of TF-IDF cosines from posting lists, against a dense brute force."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from recommender.store.lextopk import PostingsTopK


def normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1)).astype(np.float32)


def random_docs(rng, n_docs: int, n_terms: int, density: float) -> np.ndarray:
    """Dense docs x terms, l2-normalised rows; term frequencies skewed (a few terms in many documents)."""
    df = np.clip(rng.pareto(1.0, n_terms) * density, 0.002, 0.5)
    present = rng.random((n_docs, n_terms)) < df
    values = present * (1 + np.log1p(rng.integers(0, 5, (n_docs, n_terms)))) * np.log(1 / df)
    return normalised(values)


def reference(dense: np.ndarray, terms, weights, k: int):
    """Every document's score in float64; the k best (ties by lower row), zero scores excluded."""
    scores = dense[:, terms].astype(np.float64) @ np.asarray(weights, dtype=np.float64)
    rows = np.flatnonzero(scores > 0)
    order = np.lexsort((rows, -scores[rows]))[:k]
    return rows[order], scores


def check(topk: PostingsTopK, dense: np.ndarray, terms, weights, k: int) -> None:
    rows, scores = topk.top_k(terms, weights, k)
    want, all_scores = reference(dense, terms, weights, k)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    assert len(rows) == len(want)
    np.testing.assert_allclose(scores, all_scores[want], atol=1e-5)  # the k best scores, in order
    np.testing.assert_allclose(scores, all_scores[rows], atol=1e-5)  # and they are these rows' scores
    if len(rows) and not np.any(np.abs(all_scores[all_scores > 0] - scores[-1]) < 1e-5) or len(rows) < k:
        assert set(rows.tolist()) == set(want.tolist())  # no near-tie at the boundary: the same set
    assert all(scores[i] > scores[i + 1] or rows[i] < rows[i + 1] for i in range(len(rows) - 1))


@pytest.mark.parametrize("seed", range(24))
def test_top_k_equals_brute_force_on_random_corpora(seed):
    rng = np.random.default_rng(seed)
    n_docs, n_terms = int(rng.integers(20, 400)), int(rng.integers(5, 150))
    dense = random_docs(rng, n_docs, n_terms, density=float(rng.uniform(0.01, 0.2)))
    topk = PostingsTopK.from_matrix(sparse.csr_matrix(dense))
    topk.one_pass = int(rng.choice([0, 4096]))  # the pruned path, or (short lists) the one pass
    for _ in range(6):
        terms = np.sort(rng.choice(n_terms, int(rng.integers(1, n_terms + 1)), replace=False))
        weights = rng.random(len(terms)).astype(np.float32) + 0.01
        weights /= np.linalg.norm(weights)
        for k in (1, 5, 20, n_docs + 3):
            check(topk, dense, terms, weights, k)
    for row in rng.choice(n_docs, 4):  # queries by id: a stored row
        terms = np.flatnonzero(dense[row])
        check(topk, dense, terms, dense[row, terms], 10)


def test_ties_go_to_the_lower_row_and_every_tie_is_counted():
    base = normalised(np.array([[1, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 3]], dtype=np.float64))
    dense = base[[0, 1, 0, 2, 1, 0]]  # rows 0, 2 and 5 are the same document; 1 and 4 too
    topk = PostingsTopK.from_matrix(sparse.csr_matrix(dense))
    rows, scores = topk.top_k(np.array([0, 1, 2]), np.array([0.6, 0.6, 0.5], dtype=np.float32), 4)
    assert rows.tolist() == [0, 2, 5, 1]
    assert scores[0] == scores[1] == scores[2] > scores[3]
    rows, _ = topk.top_k(np.array([0, 1, 2]), np.array([0.6, 0.6, 0.5], dtype=np.float32), 1)
    assert rows.tolist() == [0]


def test_empty_queries_and_fewer_matches_than_k():
    dense = normalised(np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float64))
    topk = PostingsTopK.from_matrix(sparse.csr_matrix(dense))
    for terms, weights, k in (([], [], 5), ([2], [1.0], 5), ([0], [1.0], 0), ([0], [0.0], 3)):
        rows, scores = topk.top_k(np.array(terms, dtype=np.int64), np.array(weights, dtype=np.float32), k)
        assert rows.tolist() == [] and scores.tolist() == [] and rows.dtype == np.int64
    rows, scores = topk.top_k(np.array([0]), np.array([1.0], dtype=np.float32), 10)
    assert rows.tolist() == [0, 2]  # only the documents sharing a term
    with pytest.raises(ValueError, match="negative"):
        topk.top_k(np.array([0, 1]), np.array([1.0, -0.5], dtype=np.float32), 2)
    np.testing.assert_allclose(scores, [dense[0, 0], dense[2, 0]], rtol=1e-6)


def test_term_maxima_and_memory_mapped_postings(tmp_path):
    rng = np.random.default_rng(7)
    dense = random_docs(rng, 300, 80, density=0.08)
    dense[:, 5] = 0  # a term without postings
    postings = sparse.csr_matrix(dense).T.tocsr()
    direct = PostingsTopK.from_matrix(sparse.csr_matrix(dense))
    np.testing.assert_array_equal(direct.term_maxima(), dense.max(axis=0))
    for name in ("indptr", "indices", "data"):
        np.save(tmp_path / f"{name}.npy", getattr(postings, name))
    np.save(tmp_path / "term_max.npy", direct.term_maxima())
    mapped = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in ("indptr", "indices", "data",
                                                                                  "term_max")}
    assert isinstance(mapped["data"], np.memmap)
    topk = PostingsTopK(mapped["indptr"], mapped["indices"], mapped["data"], 300, mapped["term_max"])
    for row in range(0, 300, 7):
        terms = np.flatnonzero(dense[row])
        check(topk, dense, terms, dense[row, terms], 25)
        got = topk.top_k(terms, dense[row, terms], 25)
        again = direct.top_k(terms, dense[row, terms], 25)
        assert got[0].tolist() == again[0].tolist()


def test_top_k_many_is_top_k_of_each_row():
    rng = np.random.default_rng(3)
    dense = random_docs(rng, 200, 60, density=0.1)
    matrix = sparse.csr_matrix(dense)
    topk = PostingsTopK.from_matrix(matrix)
    queries = matrix[[4, 9, 150]]
    many = topk.top_k_many(queries.indptr, queries.indices, queries.data, 12)
    assert len(many) == 3
    for (rows, scores), row in zip(many, (4, 9, 150)):
        one = topk.top_k(matrix[row].indices, matrix[row].data, 12)
        assert rows.tolist() == one[0].tolist() and scores.tolist() == one[1].tolist()


def clustered_corpus(seed: int = 0) -> np.ndarray:
    """2,000 documents in 100 topics: each has some of its topic's rare terms and some of 40 common words (in
    10-50% of the documents); TF-IDF weights, l2 rows: the long lists belong to the low-weight common words."""
    rng = np.random.default_rng(seed)
    n_docs, topics, per_topic, common = 2000, 100, 20, 40
    counts = np.zeros((n_docs, common + topics * per_topic))
    common_df = rng.uniform(0.1, 0.5, common)
    counts[:, :common] = (rng.random((n_docs, common)) < common_df) * rng.integers(1, 4, (n_docs, common))
    topic = rng.integers(0, topics, n_docs)
    for d in range(n_docs):
        own = common + topic[d] * per_topic + rng.choice(per_topic, 8, replace=False)
        counts[d, own] = rng.integers(1, 4, 8)
    df = (counts > 0).sum(axis=0)
    tfidf = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0) * (np.log((1 + n_docs) / (1 + df)) + 1)
    return normalised(tfidf)


def test_top_k_reads_fewer_postings_than_the_brute_force_on_a_skewed_corpus():
    dense = clustered_corpus()
    topk = PostingsTopK.from_matrix(sparse.csr_matrix(dense))
    topk.one_pass = 0  # a small corpus: its short lists would be read in one pass
    lengths = np.diff(topk.indptr)
    total = 0
    for row in range(0, 2000, 50):
        terms = np.flatnonzero(dense[row])
        total += int(lengths[terms].sum())  # what a sparse product against every document reads
        check(topk, dense, terms, dense[row, terms], 10)
    assert 0 < topk.postings_read < 0.6 * total


def test_a_query_imports_no_scipy(tmp_path):
    dense = clustered_corpus(1)[:300]
    postings = sparse.csr_matrix(dense).T.tocsr()
    for name in ("indptr", "indices", "data"):
        np.save(tmp_path / f"{name}.npy", getattr(postings, name))
    code = f"""
import sys, numpy as np
from recommender.store.lextopk import PostingsTopK
a = {{n: np.load("{tmp_path}/" + n + ".npy", mmap_mode="r") for n in ("indptr", "indices", "data")}}
topk = PostingsTopK(a["indptr"], a["indices"], a["data"], 300)
rows, scores = topk.top_k(np.array([0, 1, 50]), np.array([0.5, 0.5, 0.7], dtype=np.float32), 5)
assert len(rows) == 5, rows
assert "scipy" not in sys.modules, "scipy imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))


def test_a_document_made_only_of_light_common_terms_is_found():
    """The bounds are what keeps the top-k exact: documents that share only the query's light, common words (their
    lists are read last, or only searched) can still make the top k, and they must be found."""
    rng = np.random.default_rng(11)
    n_docs, short, long = 3000, 40, 20
    light = short + long
    dense = np.zeros((n_docs, 2 + light + 50))
    df = np.concatenate((np.full(short, 0.1), np.full(long, 0.45)))
    dense[:, 2:2 + light] = (rng.random((n_docs, light)) < df) * rng.uniform(0.05, 1, (n_docs, light))
    dense[:, 2 + light:] = (rng.random((n_docs, 50)) < 0.5) * rng.uniform(0, 3, (n_docs, 50))  # other words
    dense[:60] = 0
    dense[:40, 0] = 1.0  # 40 documents with only the query's heaviest term (score 0.5)
    dense[40:60, 1] = 1.0  # 20 with only its second term (0.3)
    winners = np.array([500, 1700, 2999])
    dense[winners] = 0
    dense[winners, 2 + short:2 + light] = 1.0  # only the light words of the longest lists (0.468)
    dense = normalised(dense)
    weights = np.concatenate(([0.5, 0.3], np.full(light, np.sqrt(1 - 0.25 - 0.09) / np.sqrt(light))))
    weights = weights.astype(np.float32)
    terms = np.arange(2 + light)
    scores = dense[:, terms] @ weights
    assert sorted(np.argsort(-scores, kind="stable")[40:43].tolist()) == winners.tolist()  # after the heaviest
    for one_pass in (0, 4096):
        topk = PostingsTopK.from_matrix(sparse.csr_matrix(dense))
        topk.one_pass = one_pass
        for k in (1, 3, 10, 43, 45, 70):
            check(topk, dense, terms, weights, k)
        rows, _ = topk.top_k(terms, weights, 45)
        assert set(winners.tolist()) <= set(rows.tolist())


def test_a_candidate_that_climbs_on_the_lists_left_to_search_is_kept():
    """Once no unseen document can reach the k-th score, the seen ones are candidates; one whose score so far is
    below the k-th but whose remaining words can lift it above must survive the pruning."""
    rng = np.random.default_rng(5)
    n_docs = 10000
    dense = np.zeros((n_docs, 2 + 4 + 20))
    dense[:, 2:6] = (rng.random((n_docs, 4)) < 0.45) * rng.uniform(0.05, 1, (n_docs, 4))  # 4 long lists
    dense[:, 6:] = (rng.random((n_docs, 20)) < 0.5) * rng.uniform(0, 2, (n_docs, 20))  # other words
    dense[:90] = 0
    dense[:70, 0] = 1.0  # score 0.5
    dense[70:90, 1] = 1.0  # score 0.4
    winners = np.array([4000, 9999])
    dense[winners] = 0
    dense[winners, 1] = 0.6
    dense[winners, 2:6] = 0.4  # 0.24 from the short lists, 0.224 from the long ones: 0.464
    dense = normalised(dense)
    weights = np.array([0.5, 0.4, 0.14, 0.14, 0.14, 0.14], dtype=np.float32)
    terms = np.arange(6)
    for one_pass in (0, 4096):
        topk = PostingsTopK.from_matrix(sparse.csr_matrix(dense))
        topk.one_pass = one_pass
        for k in (72, 80):
            check(topk, dense, terms, weights, k)
        rows, _ = topk.top_k(terms, weights, 72)
        assert set(winners.tolist()) <= set(rows.tolist())


def test_impact_heads_prove_their_bound_and_are_exact_when_every_posting_is_read():
    from scipy import sparse
    from sklearn.preprocessing import normalize

    from recommender.store.lextopk import ImpactTopK, impact_order

    matrix = normalize(sparse.random(2000, 300, density=0.06, random_state=3, format="csr",
                                     dtype=np.float32)).astype(np.float32).tocsr()
    postings = matrix.T.tocsr()
    postings.sort_indices()
    ordered = impact_order(postings.indptr, postings.indices, postings.data)
    full = (matrix @ matrix.T).toarray()
    exact = PostingsTopK(postings.indptr, postings.indices, postings.data, 2000)
    small = ImpactTopK(postings.indptr, *ordered, 2000, budget=600, min_per_term=10)
    everything = ImpactTopK(postings.indptr, *ordered, 2000, budget=10 ** 7)
    truncated = 0
    for q in range(40):
        terms, weights = matrix[q].indices.astype(np.int64), matrix[q].data
        rows, _, bound = small.top_k(terms, weights, 30)
        outside = np.setdiff1d(np.arange(2000), rows)
        assert full[q, outside].max() <= bound + 1e-5  # no document left out scores above the bound
        truncated += bound > exact.top_k(terms, weights, 30)[1][-1] + 1e-6
        all_rows, all_scores, all_bound = everything.top_k(terms, weights, 30)
        want, want_scores = exact.top_k(terms, weights, 30)
        assert set(all_rows) == set(want) and np.allclose(np.sort(all_scores), np.sort(want_scores), atol=1e-5)
        assert all_bound == pytest.approx(float(want_scores[-1]), abs=1e-5)
    assert truncated > 0  # the small budget did leave postings unread


def test_impact_heads_share_the_budget_by_squared_weight_and_sum_alike_in_both_accumulators(monkeypatch):
    from scipy import sparse
    from sklearn.preprocessing import normalize

    from recommender.store import lextopk
    from recommender.store.lextopk import ImpactTopK, impact_order

    matrix = normalize(sparse.random(3000, 200, density=0.08, random_state=5, format="csr",
                                     dtype=np.float32)).astype(np.float32).tocsr()
    postings = matrix.T.tocsr()
    postings.sort_indices()
    ordered = impact_order(postings.indptr, postings.indices, postings.data)
    heads = ImpactTopK(postings.indptr, *ordered, 3000, budget=800, min_per_term=8)
    lengths = np.diff(postings.indptr)[[3, 4, 5]].astype(np.int64)
    read = ImpactTopK(postings.indptr, *ordered, 3000, budget=200, min_per_term=8).shares(
        np.array([0.9, 0.3, 0.1], np.float32), lengths)
    assert read[0] > read[1] > read[2] >= 8 and read.sum() <= 200 + 3 * 8  # the heavier term reads more
    assert np.array_equal(heads.shares(np.ones(3, np.float32), lengths // 4 + 1), lengths // 4 + 1)  # all fit
    full = (matrix @ matrix.T).toarray()
    for q in range(30):
        terms, weights = matrix[q].indices.astype(np.int64), matrix[q].data
        monkeypatch.setattr(lextopk, "DENSE_SUMS", 10 ** 6)
        dense = heads.top_k(terms, weights, 25)
        monkeypatch.setattr(lextopk, "DENSE_SUMS", 0)
        sparse_ = heads.top_k(terms, weights, 25)
        assert np.array_equal(dense[0], sparse_[0]) and np.array_equal(dense[1], sparse_[1])
        assert dense[2] == sparse_[2]
        outside = np.setdiff1d(np.arange(3000), dense[0])
        assert full[q, outside].max() <= dense[2] + 1e-6  # the bound holds


def test_distinct_documents_are_np_uniques_whatever_the_scratch_array_holds():
    # the scratch array is never cleared: a query reads only what it wrote, whatever earlier queries (of this or
    # a larger corpus) left there
    from recommender.store.lextopk import distinct

    rng = np.random.default_rng(11)
    for n, size in ((50, 400), (5000, 3000), (1_000, 1), (70_000, 65_536), (50, 0), (300, 300)):
        docs = rng.integers(0, n, size).astype(np.int64)
        found, slot = distinct(docs, n)
        want, inverse = np.unique(docs, return_inverse=True)
        assert np.array_equal(np.sort(found), want) and np.array_equal(found[slot], docs)
        values = rng.random(size)  # the sums in the read order, as np.unique's slots give them
        order = np.argsort(found)
        assert np.array_equal(np.bincount(slot, weights=values, minlength=len(found))[order],
                              np.bincount(inverse.ravel(), weights=values, minlength=len(want)))


def test_the_compiled_heads_give_the_numpy_heads_numbers_with_ties_and_reused_scratch(monkeypatch):
    # store.compiledtopk: the same rows, float32 sums and bound as the NumPy steps, bit for bit, on coarse values
    # (many equal sums: ties go to the lower row), zero and negative sums (left out), and scratch arrays reused
    # from query to query and from a larger corpus (what a query leaves there is cleared)
    pytest.importorskip("numba")
    from scipy import sparse

    from recommender.store import compiledtopk
    from recommender.store.lextopk import ImpactTopK, impact_order

    rng = np.random.default_rng(21)
    for n, terms_n, density, budget, k in ((4000, 150, 0.05, 700, 40), (600, 40, 0.3, 10 ** 6, 600),
                                           (2500, 90, 0.1, 300, 1), (3000, 60, 0.08, 900, 3000)):
        matrix = sparse.random(n, terms_n, density=density, random_state=rng.integers(1 << 30), format="csr",
                               dtype=np.float32)
        matrix.data = np.round(matrix.data * 4) / 4  # coarse: equal sums
        matrix.data[rng.random(len(matrix.data)) < 0.05] = 0.0
        postings = matrix.T.tocsr()
        postings.sort_indices()
        heads = ImpactTopK(postings.indptr, *impact_order(postings.indptr, postings.indices, postings.data), n,
                           budget=budget, min_per_term=8)
        for q in range(25):
            terms = np.sort(rng.choice(terms_n, size=int(rng.integers(1, 12)), replace=False)).astype(np.int64)
            weights = (np.round(rng.random(len(terms)) * 3) / 3).astype(np.float32)
            if q % 5 == 0:
                weights[0] = -weights[0]  # negative sums are never candidates, in either loop
            monkeypatch.setitem(compiledtopk.ACTIVE, "head_top", None)
            want = heads.top_k(terms, weights, k)
            assert compiledtopk.use_compiled()
            got = heads.top_k(terms, weights, k)
            assert np.array_equal(got[0], want[0]) and got[0].dtype == want[0].dtype
            assert np.array_equal(got[1], want[1]) and got[1].dtype == np.float32
            assert got[2] == want[2]
    assert not compiledtopk.use_compiled(False)


def test_a_kernel_numba_cannot_build_leaves_the_numpy_heads(monkeypatch, caplog):
    # numba installed but unable to compile here (or to cache, then compiled each run): never a failed night
    numba = pytest.importorskip("numba")
    from recommender.store import compiledtopk

    real = numba.njit

    def broken(*args, **kwargs):
        raise numba.core.errors.NumbaError("no code for this machine")

    monkeypatch.setattr(compiledtopk, "_COMPILED", {})
    monkeypatch.setattr(numba, "njit", broken)
    with caplog.at_level("WARNING", logger="recommender.store.compiledtopk"):
        assert not compiledtopk.use_compiled()
    assert "compiled lexical heads' top-k is not used (NumbaError: no code for this machine)" in caplog.text
    assert compiledtopk.ACTIVE["head_top"] is None
    monkeypatch.undo()
    calls = []

    def uncached(*args, **kwargs):  # no writable cache folder: numba refuses cache=True at decoration
        calls.append(kwargs.get("cache", False))
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function '_head_top': no locator available")
        return real(*args, **kwargs)

    monkeypatch.setattr(compiledtopk, "_COMPILED", {})
    monkeypatch.setattr(numba, "njit", uncached)
    assert compiledtopk.use_compiled() and calls == [True, False] * len(compiledtopk.ACTIVE)
    monkeypatch.undo()
    compiledtopk.use_compiled(False)
