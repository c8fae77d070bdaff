"""The hybrid ranking: corpus statistics against brute force, the lexical index on disk, mentions, the policy
file, duplicate collapse, MMR and the rules."""

import json

import numpy as np
import pytest

from recommender.store.lexindex import LexicalIndex
from recommender.store.mentionmatrix import article_names
from recommender.rank.linking import RuleColumns, api_name, choose_links, collapse_duplicates, mmr, order_candidates
from recommender.rank.overrides import Override, OverrideSet
from recommender.rank.policy import NO_WINDOWS, Policy, PolicyError, Ranking, load_policy, policy_to_toml
from recommender.rank.ranking import HybridRanker

ROWS = [
    ("Fetch API", "", "The Fetch API fetches resources across the network. See Request and Response."),
    ("Request", "", "The Request interface of the Fetch API represents a resource request."),
    ("Response", "", "The Response interface of the Fetch API represents the response to a request."),
    ("CSS grid layout", "", "Grid layout divides a page into rows and columns with grid tracks."),
    ("Flexbox", "", "Flexible box layout arranges items in one dimension, rows or columns."),
    ("Service Worker API", "", "Service workers intercept network requests and cache responses offline."),
]
IDS = ["api/fetch", "api/request", "api/response", "css/grid", "css/flexbox", "api/service_worker"]


class Info:
    def __init__(self, id, source=None, published=None):
        self.id, self.source, self.published = id, source, published


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def lexical():
    return LexicalIndex.build(IDS, ROWS)


def test_dense_statistics_equal_brute_force():
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(300, 16)))
    ranker = HybridRanker(vectors, None, Ranking())
    mean, std = ranker.dense_stats(vectors[:5])
    full = vectors[:5] @ vectors.T
    np.testing.assert_allclose(mean[:, 0], full.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(std[:, 0], full.std(axis=1), atol=1e-4)


def test_hybrid_scores_are_the_weighted_zscores_of_the_full_rows(lexical):
    from recommender.rank.windows import WindowScores, pair_scores
    from recommender.store.windowfiles import quantize

    rng = np.random.default_rng(1)
    vectors = unit(rng.normal(size=(len(IDS), 8)))
    counts = [1, 3, 2, 4, 1, 2]
    windows = unit(rng.normal(size=(sum(counts), 8))).astype(np.float16)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    ranking = Ranking(dense=0.2, window=0.3, lexical=0.3, mention=0.2, candidates=len(IDS))
    cand = HybridRanker(vectors, lexical, ranking, windows=WindowScores.from_vectors(windows, offsets)).score_rows(
        np.array([0]))[0]
    assert 0 not in cand.rows and len(cand.rows) == len(IDS) - 1

    def z(row):
        return (row - row.mean()) / row.std()

    codes, scales = quantize(windows)  # as the index stores them
    kept = codes.astype(np.float32) * scales[:, None]
    own = [kept[offsets[i]:offsets[i + 1]] for i in range(len(IDS))]
    dense = z(vectors[0] @ vectors.T)
    window = z(np.array([pair_scores(own[0], own[i]) for i in range(len(IDS))]))
    lex = z(lexical.tfidf_rows(np.array([0]))[0])
    men = z(lexical.mention_rows(np.array([0]))[0])
    expected = (0.2 * dense + 0.3 * window + 0.3 * lex + 0.2 * men) / 1.0
    np.testing.assert_allclose(cand.score, expected[cand.rows], atol=1e-4)
    assert list(cand.score) == sorted(cand.score, reverse=True)
    # without stored windows a site's own window weight goes to dense
    plain = HybridRanker(vectors, lexical, ranking).score_rows(np.array([0]))[0]
    expected = 0.5 * dense + 0.3 * lex + 0.2 * men
    np.testing.assert_allclose(plain.score, expected[plain.rows], atol=1e-4)
    # and the default weights become the ones measured without windows
    defaults = HybridRanker(vectors, lexical, Ranking(candidates=len(IDS)))
    assert defaults.weights == NO_WINDOWS and Ranking().weights()["window"] > 0
    cand = defaults.score_rows(np.array([0]))[0]
    expected = (0.3 * dense + 0.55 * lex + 0.15 * men) / 1.0
    np.testing.assert_allclose(cand.score, expected[cand.rows], atol=1e-4)


def test_mentions_find_titles_and_slugs(lexical):
    assert {"fetch api", "fetch"} <= article_names("api/fetch", "Fetch API")
    assert "service worker" in article_names("api/service_worker", "Service Worker API")
    assert "logging" in article_names("library/logging", "logging — Logging facility for Python")
    m = lexical.mentions
    assert m[0, 1] > 0 and m[0, 2] > 0  # "Fetch API" names Request and Response
    assert m[1, 0] > 0  # "Request" names the Fetch API
    assert m[3, 4] == 0 and m[0, 0] == 0


def test_lexical_index_round_trip_without_pickle(lexical, tmp_path):
    lexical.save(tmp_path / "lex.npz", tmp_path / "lex.json")
    loaded = LexicalIndex.load(tmp_path / "lex.npz", tmp_path / "lex.json")
    assert loaded.vocabulary == lexical.vocabulary
    assert (loaded.tfidf != lexical.tfidf).nnz == 0 and (loaded.mentions != lexical.mentions).nnz == 0
    with np.load(tmp_path / "lex.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    # a new text is transformed exactly as the stored rows were
    from recommender.store.lexical import lexical_document

    row = loaded.transform(lexical_document(*ROWS[3][::2]))
    np.testing.assert_allclose(row.toarray(), lexical.tfidf[3].toarray(), atol=1e-5)
    (tmp_path / "lex.json").write_text(json.dumps({"vocabulary": ["x"]}))
    with pytest.raises(ValueError, match="does not match"):
        LexicalIndex.load(tmp_path / "lex.npz", tmp_path / "lex.json")


def test_policy_file_and_errors(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[ranking]\ndense = 0.7\nlexical = 0.3\nmention = 0\n[links]\nk = 4\nmin_score = 2.5\n'
                    'direction = "older"\n[recency]\nhalf_life_days = 30\n')
    policy = load_policy(path)
    assert (policy.ranking.dense, policy.links.k, policy.links.min_score, policy.recency.half_life_days) == (
        0.7, 4, 2.5, 30)
    assert load_policy(None).links.k == Policy().links.k  # no file: the defaults
    again = tmp_path / "again.toml"
    again.write_text(policy_to_toml(policy))
    assert load_policy(again).to_dict() == policy.to_dict()
    for text, message in (("[links]\nk = 0\n", "k must be at least 1"),
                          ('[links]\ndirection = "up"\n', "direction must be one of"),
                          ("[ranking]\nbogus = 1\n", "unknown key"),
                          ("[weights]\n", "unknown section"),
                          ("[links\n", "not valid TOML"),
                          ('[links]\nk = "ten"\n', "must be a number"),
                          ("[links]\nk = 2.5\n", "whole number")):
        path.write_text(text)
        with pytest.raises(PolicyError, match=message) as info:
            load_policy(path)
        assert str(path) in str(info.value)


def test_duplicates_collapse_to_the_earliest_copy():
    base = unit(np.array([[1.0, 0, 0], [0.99, 0.14, 0], [0, 1.0, 0], [0.98, 0.0, 0.2]]))
    facts = RuleColumns.from_infos([Info("a", published="2024-03-02"), Info("b", published="2024-03-01"),
                              Info("c"), Info("d", published="2024-03-05")])
    rows, score = collapse_duplicates(np.array([0, 1, 2, 3]), np.array([3.0, 2.0, 1.0, 0.5]), base, facts, 0.95,
                                      None)
    # a, b and d are copies: the earliest (b) takes the best slot; c stays
    assert rows.tolist() == [1, 2] and score.tolist() == [3.0, 1.0]
    rows, _ = collapse_duplicates(np.array([1, 2]), np.array([2.0, 1.0]), base, facts, 0.95, base[0])
    assert rows.tolist() == [2]  # a copy of the query itself is dropped


def test_a_copy_of_two_slots_joins_the_first():
    # a and b are 36 degrees apart (no copies), c 18 degrees from each: a copy of both, counted in a's slot
    angles = np.radians([0.0, 36.0, 18.0, 90.0])
    vectors = np.stack([np.cos(angles), np.sin(angles), np.zeros(4)], axis=1).astype(np.float32)
    facts = RuleColumns.from_infos([Info("a", published="2024-03-02"), Info("b", published="2024-03-03"),
                              Info("c", published="2024-03-01"), Info("d")])
    rows, score = collapse_duplicates(np.array([0, 1, 2, 3]), np.array([4.0, 3.0, 2.0, 1.0]), vectors, facts,
                                      0.95, None)
    assert rows.tolist() == [2, 1, 3] and score.tolist() == [4.0, 3.0, 1.0]  # c, the earliest, takes a's slot


def test_api_pages_of_different_names_are_no_copies():
    # one docstring under four pages: the query numpy.max, its alias numpy.amax, numpy.ma.max (another namespace)
    # and numpy.ma.max again at another URL; a fifth page far off. Curated API lists link aliases and namesakes:
    # only the same name at two URLs is a copy
    base = unit(np.array([[1.0, 0, 0], [0.999, 0.04, 0], [0.998, 0.06, 0], [0.998, 0.0, 0.06], [0, 1.0, 0]]))
    pages = ["ref/numpy.max.html", "ref/numpy.amax.html", "ref/numpy.ma.max.html", "v2/numpy.ma.max.html",
             "ref/numpy.min.html"]
    facts = RuleColumns.from_infos([Info(p) for p in pages])
    rows, _ = collapse_duplicates(np.array([1, 2, 3, 4]), np.array([4.0, 3.0, 2.0, 1.0]), base, facts, 0.95, base[0],
                                  0)
    assert rows.tolist() == [1, 2, 4]
    plain = RuleColumns.from_infos([Info(p.replace(".", "-")) for p in pages])  # no API names: all copies
    rows, _ = collapse_duplicates(np.array([1, 2, 3, 4]), np.array([4.0, 3.0, 2.0, 1.0]), base, plain, 0.95, base[0],
                                  0)
    assert rows.tolist() == [4]


def test_api_names():
    assert api_name("https://numpy.org/doc/reference/generated/numpy.ma.arctan2.html", "x") == "numpy.ma.arctan2"
    assert api_name(None, "library/os.path") == "os.path"
    assert api_name(None, "Array.prototype.map") == "array.prototype.map"
    for page in ("printf.3", "sysexits.h.3head", "docs/3.2", "blog/post-1.html", "notes.md", "index.html", ""):
        assert api_name(None, page) is None, page


def test_mmr_prefers_variety():
    vectors = unit(np.array([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0], [0.7, 0.7]]))
    rows, _ = mmr(np.array([0, 1, 2, 3]), np.array([1.0, 0.95, 0.6, 0.5]), vectors, 0.5)
    assert rows.tolist()[:2] == [0, 2]  # the near-copy of the first waits
    same, _ = mmr(np.array([0, 1, 2, 3]), np.array([1.0, 0.95, 0.6, 0.5]), vectors, 1.0)
    assert same.tolist() == [0, 1, 2, 3]


def test_rules_overrides_and_min_score(lexical):
    rng = np.random.default_rng(2)
    vectors = unit(rng.normal(size=(len(IDS), 8)))
    facts = RuleColumns.from_infos([Info(i, source="desk" if n < 3 else None, published=f"2024-01-0{n + 1}")
                              for n, i in enumerate(IDS)])
    ranker = HybridRanker(vectors, lexical, Ranking(candidates=10))
    cand = ranker.score_rows(np.array([1]))[0]
    policy = Policy().with_links(k=3, same_source="exclude").with_section("duplicates", threshold=1.0)
    rows = [link.row for link in order_candidates(cand, facts, vectors, policy)]
    assert 0 not in rows and 2 not in rows and 1 not in rows  # same source as api/request
    older = Policy().with_links(direction="older").with_section("duplicates", threshold=1.0)
    assert [link.row for link in order_candidates(cand, facts, vectors, older)] == [0]
    edits = OverrideSet([Override("api/request", "css/flexbox", "pin", 0, None, "t"),
                         Override("*", "api/fetch", "block", 0, None, "t")])
    policy = Policy().with_links(k=2, min_score=99.0).with_section("duplicates", threshold=1.0)
    chosen = choose_links(order_candidates(cand, facts, vectors, policy, edits), policy)
    assert [(link.row, link.pinned) for link in chosen] == [(4, True)]  # pinned survives min_score; rest too weak
    free = Policy().with_links(k=5).with_section("duplicates", threshold=1.0)
    assert 0 not in [link.row for link in order_candidates(cand, facts, vectors, free, edits)]


def test_links_from_an_approximate_index_match_exact_links():
    import copy

    from recommender.store.ann import IVFIndex
    from recommender.batch.relatedlists import LinkJob, all_links

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(20, 32))
    vectors = unit(centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 32)))
    ivf = IVFIndex.build(vectors)
    shipped = copy.deepcopy(ivf)  # how an engine ships it: FAISS's own serialisation
    assert shipped.approximate and shipped.count == 3000 and shipped.nprobe == ivf.nprobe
    np.testing.assert_array_equal(shipped.search(vectors[:5], 10)[1], ivf.search(vectors[:5], 10)[1])
    facts = RuleColumns.from_infos([Info(f"a{i}") for i in range(3000)])
    policy = Policy(ranking=Ranking(dense=1, lexical=0, mention=0, candidates=30)).with_links(k=10)
    exact = all_links(LinkJob(vectors=vectors, lexical=None, policy=policy, facts=facts))
    approx = all_links(LinkJob(vectors=vectors, lexical=None, policy=policy, facts=facts, ann=shipped))
    found = np.mean([len({l.row for l in a} & {l.row for l in e}) / 10 for a, e in zip(approx, exact)])
    assert found > 0.95
    # the scores of links both found are the exact ones (re-scored on the full vectors)
    same = [(a, e) for a, e in zip(approx, exact) if [l.row for l in a] == [l.row for l in e]]
    assert same and all(np.allclose([l.score for l in a], [l.score for l in e], atol=1e-4) for a, e in same)


def test_the_copies_walk_is_the_same_compiled(monkeypatch):
    """collapse_duplicates' walk down the list, in Python and in the compiled loop (store.compiledscores._copy_slots,
    which the batch and the service run): the same rows and slot scores, on lists full of copies."""
    from recommender.store import compiledtopk

    kernel = compiledtopk._kernel("copy_slots")
    if kernel is None:
        pytest.skip("numba cannot build the loop here")
    rng = np.random.default_rng(4)
    stories = unit(rng.normal(size=(12, 16)))
    vectors = unit(np.repeat(stories, 5, axis=0) + rng.normal(scale=0.02, size=(60, 16)))  # 5 near-copies each
    days = [None, "2024-03-01", "2024-03-02", "2024-03-03"]  # copies of one day (and undated): the first kept
    facts = RuleColumns.from_infos([Info(f"p{i}", published=days[rng.integers(0, 4)]) for i in range(60)])
    trials = [(rng.permutation(60)[:40], np.sort(rng.random(40))[::-1], t) for t in range(30)]
    ways = []
    for loop in (None, kernel):
        monkeypatch.setitem(compiledtopk.ACTIVE, "copy_slots", loop)
        ways.append([collapse_duplicates(rows, score, vectors, facts, 0.95, vectors[q] if q % 3 else None, q)
                     for rows, score, q in trials])
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[1].dtype == b[1].dtype
               for a, b in zip(*ways))
    assert sum(len(rows) < 30 for rows, _ in ways[0]) > 20  # copies collapsed in most lists
