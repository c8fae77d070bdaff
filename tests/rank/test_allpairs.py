"""All-pairs top-k under link rules, checked against a brute-force numpy reference and hand-made cases."""

from datetime import datetime, timezone

import numpy as np
import pytest

from recommender.rank.allpairs import SourceDays, LinkRules, all_pairs_topk, day_number
from recommender.store.ann import FlatIndex
from recommender.rank.topk import topk_bruteforce


def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def random_vectors():
    return unit(np.random.default_rng(7).normal(size=(500, 24)))


def test_without_rules_equals_bruteforce(random_vectors):
    index = FlatIndex.build(random_vectors)
    scores, rows = all_pairs_topk(index, random_vectors, LinkRules(k=7), block=64)
    ref_scores, ref_rows = topk_bruteforce(random_vectors, random_vectors, 7, exclude=np.arange(500))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert (rows != np.arange(500)[:, None]).all()  # never the article itself
    # equal rows wherever scores are not tied
    assert (rows == ref_rows).mean() > 0.99


def test_k_larger_than_corpus_pads_with_minus_one():
    vectors = unit([[1, 0], [0.9, 0.1], [0, 1]])
    scores, rows = all_pairs_topk(FlatIndex.build(vectors), vectors, LinkRules(k=5))
    assert rows.shape == (3, 5)
    assert (rows[:, 2:] == -1).all() and np.isnan(scores[:, 2:]).all()
    assert rows[0, 0] == 1 and rows[0, 1] == 2


def test_min_score_gives_fewer_links_not_weak_ones():
    vectors = unit([[1, 0], [0.95, 0.05], [0, 1], [0.05, 0.95]])
    scores, rows = all_pairs_topk(FlatIndex.build(vectors), vectors, LinkRules(k=3, min_score=0.9))
    assert rows[0].tolist() == [1, -1, -1]
    assert rows[2].tolist() == [3, -1, -1]
    assert np.nanmin(scores) >= 0.9


def test_same_source_is_excluded_and_search_goes_deeper(random_vectors):
    # half the corpus from one source: the nearest neighbours are often same-source, so rows must be refilled
    sources = ["a" if i % 2 else "b" for i in range(500)]
    facts = SourceDays.from_lists(sources, [None] * 500)
    rules = LinkRules(k=10, exclude_same_source=True)
    scores, rows = all_pairs_topk(FlatIndex.build(random_vectors), random_vectors, rules, facts, block=100)
    assert (rows >= 0).all()
    assert all(sources[r] != sources[q] for q in range(500) for r in rows[q])
    # and they are the best other-source articles
    full = random_vectors @ random_vectors.T
    for q in (0, 1, 250):
        other = [i for i in range(500) if sources[i] != sources[q]]
        best = sorted(other, key=lambda i: -full[q, i])[:10]
        np.testing.assert_allclose(scores[q], full[q, best], atol=1e-5)


def test_unknown_source_is_never_treated_as_the_same_source():
    vectors = unit([[1, 0], [0.9, 0.1], [0.8, 0.2]])
    facts = SourceDays.from_lists([None, None, "x"], [None] * 3)
    _, rows = all_pairs_topk(FlatIndex.build(vectors), vectors, LinkRules(k=2, exclude_same_source=True), facts)
    assert rows[0].tolist() == [1, 2]


def test_direction_older_and_newer_with_undated_passing():
    vectors = unit([[1, 0], [0.99, 0.01], [0.98, 0.02], [0.97, 0.03]])
    dates = ["2024-01-10", "2024-01-20T08:00:00Z", "2024-01-01", None]
    facts = SourceDays.from_lists([None] * 4, dates)
    index = FlatIndex.build(vectors)
    _, older = all_pairs_topk(index, vectors, LinkRules(k=3, direction="older"), facts)
    assert older[0].tolist() == [2, 3, -1]  # 2024-01-01 is older; undated passes; 2024-01-20 is newer
    _, newer = all_pairs_topk(index, vectors, LinkRules(k=3, direction="newer"), facts)
    assert newer[0].tolist() == [1, 3, -1]


def test_max_age_days_counts_from_as_of():
    vectors = unit([[1, 0], [0.99, 0.01], [0.98, 0.02]])
    facts = SourceDays.from_lists([None] * 3, ["2025-06-01", "2025-05-25", "2024-01-01"])
    as_of = datetime(2025, 6, 2, tzinfo=timezone.utc)
    _, rows = all_pairs_topk(FlatIndex.build(vectors), vectors, LinkRules(k=2, max_age_days=30), facts, as_of=as_of)
    assert rows[0].tolist() == [1, -1]
    assert rows[2].tolist() == [1, 0]  # the old article may still link to fresh ones


def test_day_number_reads_dates_and_datetimes():
    assert day_number("1970-01-02") == 1.0
    assert day_number("1970-01-01T12:00:00Z") == 0.5
    assert np.isnan(day_number("next tuesday")) and np.isnan(day_number(None))


def test_bad_rules_are_refused():
    with pytest.raises(ValueError, match="direction"):
        LinkRules(direction="sideways")
    with pytest.raises(ValueError, match="k must"):
        LinkRules(k=0)


def test_approximate_index_candidates_are_rescored_exactly():
    from recommender.store.ann import IVFIndex

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(30, 32))
    vectors = unit(centres[rng.integers(0, 30, 3000)] + 0.3 * rng.normal(size=(3000, 32)))
    ivf = IVFIndex.build(vectors)
    scores, rows = all_pairs_topk(ivf, vectors, LinkRules(k=10), block=500)
    ref_scores, ref_rows = topk_bruteforce(vectors, vectors, 10, exclude=np.arange(3000))
    found = [rows[i][rows[i] >= 0] for i in range(3000)]
    recall = np.mean([len(set(f) & set(r)) / 10 for f, r in zip(found, ref_rows)])
    assert recall >= 0.97
    # scores are the exact cosines of the rows returned (not the 8-bit approximations), best first
    exact = np.einsum("qd,qkd->qk", vectors, vectors[rows])
    np.testing.assert_allclose(scores, exact, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-7).all()
