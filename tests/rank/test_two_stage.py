"""The two-stage ranking (candidates from top-k indexes, parts scored on them alone) against the exact reference
(every query against the whole corpus): each stage's numbers against brute force, and the two rankings' lists
against each other on a corpus where the pools are real subsets."""

from dataclasses import replace

import numpy as np
import pytest

from recommender.rank import candidates as stage
from recommender.rank import windowstage
from recommender.rank.candidates import LexicalStage, sample_rows
from recommender.rank.exactranking import row_stats
from recommender.rank.policy import Ranking
from recommender.rank.ranking import HybridRanker
from recommender.rank.windows import WindowScores
from recommender.rank.windowsearch import ExactWindowSearch
from recommender.store.lexindex import LexicalIndex

WORDS = ("fetch request response grid flexbox layout worker cache network offline header cookie storage "
         "canvas audio video stream socket event promise module import class async render paint font").split()


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus():
    """300 articles in 12 topics: vectors, window vectors and texts drawn around each topic."""
    rng = np.random.default_rng(7)
    n, dim, topics = 300, 24, 12
    centres = unit(rng.normal(size=(topics, dim)))
    topic = rng.integers(0, topics, n)
    vectors = unit(centres[topic] + 0.6 * rng.normal(size=(n, dim)))
    counts = rng.integers(1, 6, n)
    windows = unit(np.repeat(vectors, counts, axis=0) + 0.5 * rng.normal(size=(counts.sum(), dim)))
    offsets = np.concatenate(([0], np.cumsum(counts)))
    texts = []
    for i in range(n):
        own = [WORDS[(topic[i] * 2 + j) % len(WORDS)] for j in range(2)]
        words = list(rng.choice(WORDS, 12)) + own * int(rng.integers(1, 4))
        see = " see Article %d %s" % ((i + 1) % n, WORDS[(topic[(i + 1) % n] * 2) % len(WORDS)]) if i % 10 == 0 else ""
        texts.append(("Article %d %s" % (i, own[0]), "", " ".join(words) + see))
    lexical = LexicalIndex.build([f"a/{i}" for i in range(n)], texts)
    return vectors, WindowScores.from_vectors(windows, offsets), lexical


def rankers(corpus, **ranking):
    vectors, windows, lexical = corpus
    base = Ranking(dense=0.2, window=0.4, lexical=0.3, mention=0.1, **ranking)
    exact = HybridRanker(vectors, lexical, replace(base, retrieval="exact"), windows=windows)
    two = HybridRanker(vectors, lexical, base, windows=windows)
    return exact, two


def test_sample_is_fixed_and_every_row_when_small():
    assert np.array_equal(sample_rows(50, 100), np.arange(50))
    a, b = sample_rows(10_000, 500), sample_rows(10_000, 500)
    assert np.array_equal(a, b) and len(np.unique(a)) == 500 and np.all(np.diff(a) > 0)


def test_several_rows_with_one_pool_have_each_rows_own_stratified_figures():
    # the window score and max-sim of one pool share which sample rows are outside it; each row's figures are the
    # same numbers as alone, and each row's own (not the first row's)
    rng = np.random.default_rng(3)
    n, sample = 5_000, sample_rows(5_000, 300)
    pool = rng.choice(n, 40, replace=False)  # in score order, not sorted; some of them in the sample
    pool[:5] = sample[[0, 7, 30, 31, 299]]
    tops = [rng.random(40), rng.random(40) * 3]
    samples = [rng.random(300).astype(np.float32), (rng.random(300) * 2).astype(np.float32)]
    both = stage.stratified_rows(n, pool, tops, sample, samples)
    alone = [stage.stratified(n, pool, top, sample, values) for top, values in zip(tops, samples)]
    assert both == alone and both[0] != both[1]
    assert stage.stratified_rows(n, pool, tops, sample, samples, mean=0.5)[1] == \
        stage.stratified(n, pool, tops[1], sample, samples[1], mean=0.5)
    rest = ~np.isin(sample, pool)  # the sample rows outside the pool, found once, for each row
    top, values = tops[1], samples[1][rest].astype(np.float64)
    mean = (top.sum() + (n - 40) * values.mean()) / n
    squares = np.square(top).sum() + (n - 40) * np.mean(np.square(values))
    assert both[1] == pytest.approx((mean, np.sqrt(squares / n - mean * mean)), rel=1e-12)


def test_lexical_values_and_statistics_against_the_full_row(corpus):
    _, _, lexical = corpus
    lex = LexicalStage(lexical.csr_arrays(), lexical.count, lexical.vocabulary_size)
    full = lexical.tfidf_rows(np.arange(5))
    mean, std = row_stats(full)
    for q in range(5):
        terms, weights = lex.row(q)
        cand = np.array([0, 3, 17, 120, 299])
        np.testing.assert_allclose(lex.values(terms, weights, cand), full[q, cand], atol=1e-6)
        rows, scores, bound, more = lex.pool(terms, weights, 20)
        assert more is None
        for top in (None, (rows, scores)):  # the sample is every row here: the full row's figures
            m, s = lex.stats(terms, weights, top)
            assert m == pytest.approx(mean[q, 0], abs=1e-6) and s == pytest.approx(std[q, 0], abs=1e-5)
        top = np.lexsort((np.arange(lexical.count), -full[q]))[:20]
        assert set(rows) == set(top) and bound == pytest.approx(full[q, top[-1]], abs=1e-6)
        # the next 15 as well (the nightly reach's record): the same 20 first, then the row's next 15 in order
        wide = lex.pool(terms, weights, 20, more=15)
        assert np.array_equal(wide[0], rows) and np.array_equal(wide[1], scores) and wide[2] == bound
        following = np.lexsort((np.arange(lexical.count), -full[q]))[20:35]
        following = following[full[q, following] > 0]
        assert np.array_equal(wide[3][0], following)
        np.testing.assert_allclose(wide[3][1], full[q, following], atol=1e-6)


def test_lexical_deviation_from_a_sample_is_close(corpus, monkeypatch):
    _, _, lexical = corpus
    monkeypatch.setattr(stage, "LEXICAL_SAMPLE", 150)
    lex = LexicalStage(lexical.csr_arrays(), lexical.count, lexical.vocabulary_size)
    full = lexical.tfidf_rows(np.arange(40))
    errors = [abs(lex.stats(*lex.row(q))[1] / full[q].std() - 1) for q in range(40)]
    assert np.median(errors) < 0.15  # half the corpus sampled
    better = [abs(lex.stats(*lex.row(q), lex.pool(*lex.row(q), 20)[:2])[1] / full[q].std() - 1) for q in range(40)]
    assert np.mean(better) < np.mean(errors)  # the best rows' squares exact, the rest from the sample


def three_ways(monkeypatch, kernel: str, seed: int):
    """The same lexical stage three ways: NumPy's steps, SciPy's, and the compiled loop `kernel`, over 200 rows
    that share most of their terms with each other, so that another order of additions shows."""
    from recommender.store import compiledtopk

    if compiledtopk._kernel(kernel) is None:
        pytest.skip("numba cannot build the loop here")
    rng = np.random.default_rng(seed)
    texts = [("", "", " ".join(w for w in WORDS for _ in range(int(rng.integers(0, 9))))) for _ in range(200)]
    lexical = LexicalIndex.build([f"a/{i}" for i in range(200)], texts)
    for way in ("numpy", "scipy", "compiled"):
        monkeypatch.setitem(compiledtopk.ACTIVE, kernel, compiledtopk._kernel(kernel) if way == "compiled" else None)
        yield LexicalStage(lexical.csr_arrays(), lexical.count, lexical.vocabulary_size,
                           matrix=lexical.tfidf if way == "scipy" else None)


def test_the_lexical_sample_sums_are_the_same_bits_in_numpy_scipy_and_the_compiled_loop(monkeypatch):
    # float64 sums term after term, entries in sample order (store.compiledscores)
    monkeypatch.setattr(stage, "LEXICAL_SAMPLE", 150)  # a real sample: the row's rest is estimated from it
    figures = [[lex.stats(*lex.row(q), lex.pool(*lex.row(q), 20)[:2]) for q in range(0, 200, 5)]
               for lex in three_ways(monkeypatch, "sample_sums", 11)]
    assert figures[0] == figures[1] == figures[2]
    assert len({s for _, s in figures[0]}) > 30  # the rows differ: a sum that ignored the query would not pass


def test_the_candidates_tfidf_cosines_are_the_same_bits_in_numpy_scipy_and_the_compiled_loop(monkeypatch):
    # float32 sums from 0 in each row's stored term order (SciPy's csr_matvec)
    rows = np.random.default_rng(12).permutation(200)[:150]
    figures = []
    for lex in three_ways(monkeypatch, "row_dots", 12):
        figures.append(np.stack([lex.values(*lex.row(q), rows) for q in range(0, 200, 5)]))
    assert np.array_equal(figures[0], figures[1]) and np.array_equal(figures[0], figures[2])
    indptr, indices, data = lex.tfidf
    backwards = []  # the same products added last term first
    for q in range(0, 200, 5):
        dense = np.zeros(lex.vocabulary, np.float32)
        terms, weights = lex.row(q)
        dense[terms] = weights
        sums = []
        for r in rows:
            total = np.float32(0)
            for j in range(indptr[r + 1] - 1, indptr[r] - 1, -1):
                total = np.float32(total + data[j] * dense[indices[j]])
            sums.append(total)
        backwards.append(sums)
    assert not np.array_equal(figures[0], np.array(backwards, np.float32))


def test_mention_statistics_are_the_full_rows(corpus):
    _, _, lexical = corpus
    lex = LexicalStage(lexical.csr_arrays(), lexical.count, lexical.vocabulary_size)
    full = lexical.mention_rows(np.arange(lexical.count))
    mean, std = row_stats(full)
    assert full.any(axis=1).sum() >= 20
    for q in np.flatnonzero(full.any(axis=1))[:10]:
        cols, values = lex.mention_row(q)
        assert np.array_equal(np.sort(cols), np.flatnonzero(full[q]))
        m, s = lex.mention_stats(values)
        assert m == pytest.approx(mean[q, 0], abs=1e-6) and s == pytest.approx(std[q, 0], abs=1e-5)


def test_window_pairs_and_exact_search_against_brute_force(corpus):
    _, windows, _ = corpus
    full, best = windows.rows(np.arange(4), with_max=True)
    for q in range(4):
        rows = np.array([0, 5, 77, 299, q])
        score, top = windows.pairs(*windows.windows_of(q), rows)
        np.testing.assert_allclose(score, full[q, rows], atol=1e-6)
        np.testing.assert_array_equal(top, best[q, rows])
    dense = windows.dequantised()
    sims, ids = ExactWindowSearch(windows).search_codes(windows.exact_codes()[:6], windows.scales[:6], 25)
    brute = dense[:6] @ dense.T
    for i in range(6):
        assert set(ids[i]) == set(np.argsort(-brute[i], kind="stable")[:25]) or \
            np.allclose(np.sort(brute[i][ids[i]]), np.sort(brute[i])[-25:], atol=1e-6)
        np.testing.assert_allclose(sims[i], brute[i][ids[i]], atol=1e-5)


def test_two_stage_equals_exact_when_the_pools_hold_everything(corpus):
    exact, two = rankers(corpus, candidates=300)
    rows = np.arange(0, 300, 37)
    for a, b in zip(exact.score_rows(rows), two.score_rows(rows)):
        assert np.array_equal(a.rows, b.rows)
        np.testing.assert_allclose(a.score, b.score, atol=1e-4)


def test_two_stage_lists_agree_with_exact_when_the_pools_are_subsets(corpus, monkeypatch):
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 60)
    monkeypatch.setattr(windowstage, "MIN_PER_WINDOW", 12)
    monkeypatch.setattr(windowstage, "WINDOW_SAMPLE", 120)
    monkeypatch.setattr(stage, "LEXICAL_SAMPLE", 120)
    exact, two = rankers(corpus, candidates=30)
    rows = np.arange(300)
    overlap, sizes = [], []
    for a, b in zip(exact.score_rows(rows), two.score_rows(rows)):
        sizes.append(len(b.rows))
        overlap.append(len(set(a.rows[:10]) & set(b.rows[:10])) / 10)
    assert max(sizes) < 300  # the candidates are a real subset of the corpus
    assert np.mean(overlap) >= 0.9


def test_a_query_gets_the_same_candidates_alone_or_in_a_block(corpus, monkeypatch):
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 60)
    _, two = rankers(corpus, candidates=30)
    block = two.score_rows(np.arange(64))
    for q in (0, 13, 63):
        alone = two.score_rows(np.array([q]))[0]
        assert np.array_equal(alone.rows, block[q].rows) and np.array_equal(alone.score, block[q].score)


def test_above_the_exact_search_size_the_window_candidates_come_from_the_stored_ivf_index(corpus, monkeypatch):
    from recommender.store.windowann import WindowANN

    vectors, windows, lexical = corpus
    ann = WindowANN.build(windows.dequantised(), flat_max=100)
    assert ann.approximate
    ann.nprobe = ann.index.nlist  # every list probed: the nearest windows as an exact search finds them
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 60)
    monkeypatch.setattr(windowstage, "WINDOW_SAMPLE", 120)
    ranking = Ranking(dense=0.2, window=0.4, lexical=0.3, mention=0.1, candidates=30)
    exact_search = HybridRanker(vectors, lexical, ranking, windows=windows, window_ann=ann)
    assert isinstance(exact_search.window_stage().ann, ExactWindowSearch)  # below EXACT_WINDOW_SEARCH
    monkeypatch.setattr(windowstage, "EXACT_WINDOW_SEARCH", 100)
    stored = HybridRanker(vectors, lexical, ranking, windows=windows, window_ann=ann)
    assert stored.window_stage().ann is ann
    rows = np.arange(0, 300, 7)
    overlap = [len(set(a.rows[:10]) & set(b.rows[:10])) / 10
               for a, b in zip(exact_search.score_rows(rows), stored.score_rows(rows))]
    assert np.mean(overlap) >= 0.95


def test_on_the_ivf_window_index_a_block_retrieves_what_each_query_alone_does(corpus, monkeypatch):
    """A block's lists probed in one pass and its windows' articles read from the map of every window's (the
    batch) give each query the same windows, bounds and candidates as its own search does (a query by id)."""
    from recommender.store.windowann import WindowANN

    vectors, windows, lexical = corpus
    ann = WindowANN.build(windows.dequantised(), flat_max=100)
    ann.nprobe = 2  # few lists probed: what each window finds depends on its own lists
    monkeypatch.setattr(windowstage, "WINDOW_NEIGHBOURS", 60)
    monkeypatch.setattr(windowstage, "WINDOW_SAMPLE", 120)
    monkeypatch.setattr(windowstage, "EXACT_WINDOW_SEARCH", 100)
    ranking = Ranking(dense=0.2, window=0.4, lexical=0.3, mention=0.1, candidates=30)
    ranker = HybridRanker(vectors, lexical, ranking, windows=windows, window_ann=ann)
    queries = [windows.windows_of(r) for r in range(64)]
    assert len({len(codes) for codes, _ in queries}) > 1  # several groups of queries asking as many windows
    block_stage = windowstage.WindowStage(windows, ann, margin=0.5)
    block = block_stage.retrieve(queries)
    assert block_stage._owner_map is not None
    for q in range(64):
        alone_stage = windowstage.WindowStage(windows, ann, margin=0.5)
        alone = alone_stage.retrieve([queries[q]])[0]
        assert alone_stage._owner_map is None
        for a, b in zip(alone, block[q]):
            for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
                assert np.array_equal(np.asarray(x), np.asarray(y))
    lists = ranker.score_rows(np.arange(64))
    for q in (0, 17, 63):
        alone = HybridRanker(vectors, lexical, ranking, windows=windows, window_ann=ann).score_rows(np.array([q]))[0]
        assert np.array_equal(alone.rows, lists[q].rows) and np.array_equal(alone.score, lists[q].score)


class ReadOnlyStats:
    """A CorpusStats with nothing but the protocol (rank.corpusstats): kept statistics for rows 0-9 only; any
    attribute set on it after construction fails, so the ranking cannot write into it."""

    def __init__(self, vectors):
        v64 = vectors.astype(np.float64)
        object.__setattr__(self, "mean_vector", vectors.mean(axis=0).astype(np.float32))
        object.__setattr__(self, "second_moment", ((v64.T @ v64) / len(vectors)).astype(np.float32))
        object.__setattr__(self, "reads", [])

    def __setattr__(self, name, value):
        raise AttributeError(f"the ranking set {name} on the corpus statistics")

    def row_stats(self, part, rows, mean, std):
        self.reads.append(part)
        kept = rows < 10
        return np.where(kept[:, None], 0.5, mean).astype(mean.dtype), np.where(kept[:, None], 2.0, std).astype(std.dtype)


@pytest.mark.parametrize("retrieval", ["two-stage", "exact"])
def test_the_ranking_reads_corpus_stats_and_returns_its_pools(corpus, retrieval):
    """With corpus statistics the ranking normalises with them where they are kept (rows 0-9 here), and returns with
    each query's candidates what it found of its pools and the statistics it used, for the batch to keep."""
    vectors, windows, lexical = corpus
    stats = ReadOnlyStats(vectors)
    ranker = HybridRanker(vectors, lexical, Ranking(dense=0.2, window=0.4, lexical=0.3, mention=0.1,
                                                     retrieval=retrieval), windows=windows, frozen=stats)
    kept, fresh = ranker.score_rows(np.array([3, 40]))
    assert set(stats.reads) == {"window", "window_max", "lexical", "mention"}
    for cand in (kept, fresh):
        assert cand.pools is not None and cand.pools.dense <= float(cand.raw["dense"].max())
        assert cand.pools.mention is not None and cand.pools.mention >= 0  # the mention pool's cut
        assert set(cand.pools.stats) == {"window", "window_max", "lexical", "mention"}
    assert kept.pools.stats["lexical"] == (0.5, 2.0)  # the kept statistics were used
    assert fresh.pools.stats["lexical"] != (0.5, 2.0)  # row 40's own, to keep
    assert HybridRanker(vectors, lexical, Ranking(), windows=windows).score_rows(np.array([3]))[0].pools is None


@pytest.mark.parametrize("compiled", [False, True])
def test_a_mention_rows_cut_is_its_depth_plus_first_largest_value_with_or_without_ties(compiled, monkeypatch):
    from recommender.store import compiledtopk

    if compiled and compiledtopk.rows_top_kernel() is None:
        pytest.skip("numba cannot build the loop here")
    monkeypatch.setitem(compiledtopk.ACTIVE, "rows_top", compiledtopk.rows_top_kernel() if compiled else None)
    rng = np.random.default_rng(5)
    distinct = rng.permutation(np.arange(1, 3001)).astype(np.float32) / 7
    few = rng.choice(np.float32([0.5, 1.0, 1.5, 2.25]), 3000)  # a real row's few distinct weights
    for values in (distinct, few):
        for depth in (1, 10, 2998, 2999):
            assert stage.mention_cut(values, depth) == np.sort(values)[::-1][depth]
    assert stage.mention_cut(distinct, 3000) == 0.0


@pytest.mark.parametrize("compiled", [False, True])
def test_the_mention_pool_is_the_row_above_its_cut(corpus, compiled, monkeypatch):
    """A hub that half the corpus names, naming 30 back: its mention row is longer than the candidate pools, and
    only the entries above the row's (depth+1)-th largest weight join its candidates (rank.candidates.mention_pool),
    so how many candidates a query has does not follow how often it is named. The nightly reach's dense-block cut
    (mention_cuts) is the same number. The cut sorted (a one-shot query) or through the compiled heap."""
    from recommender.store import compiledtopk

    if compiled and compiledtopk.rows_top_kernel() is None:
        pytest.skip("numba cannot build the loop here")
    monkeypatch.setitem(compiledtopk.ACTIVE, "rows_top", compiledtopk.rows_top_kernel() if compiled else None)
    vectors, windows, _ = corpus
    n = len(vectors)
    rng = np.random.default_rng(3)
    named = rng.choice(np.arange(1, n), 30, replace=False)
    back = set(named[:6].tolist())  # name the hub back: their entries weigh the most
    texts = []
    for i in range(n):
        body = " ".join(rng.choice(WORDS, 12))
        if i == 0:
            body += "".join(f" see Topic{j} notes." for j in named)
        elif i in back or (i not in named and rng.random() < 0.5):
            body += " the Hub handbook"
        texts.append(("Hub handbook" if i == 0 else f"Topic{i} notes", "", body))
    lexical = LexicalIndex.build([f"a/{i}" for i in range(n)], texts)
    ranker = HybridRanker(vectors, lexical, Ranking(dense=0.2, window=0.4, lexical=0.3, mention=0.1, candidates=10),
                          windows=windows)
    lex = ranker.lexical_stage()
    cols, values = lex.mention_row(0)
    assert len(cols) > 100
    depth = stage.mention_depth(11)  # pools of 10 candidates + 1
    cut = np.sort(values)[::-1][depth]
    members, got_cut = stage.mention_pool(cols, values, depth)
    assert got_cut == cut and set(members) == set(cols[values > cut]) and 0 < len(members) <= depth
    dense_row = np.zeros((1, n), np.float32)
    dense_row[0, cols] = values
    assert stage.mention_cuts(dense_row, depth)[0] == cut
    assert stage.mention_pool(cols[:depth], values[:depth], depth)[1] == 0.0  # a short row: all of it, cut 0
    cand = ranker.score_rows(np.array([0]))[0]
    assert set(members) <= set(cand.rows)
    assert set(cols[values <= cut]) - set(cand.rows)  # named, weighed at most the cut, and no candidate
