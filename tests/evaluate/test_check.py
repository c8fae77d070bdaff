"""The editors' check ranks exactly as `related` does (same ranking, policy, overrides and score scale): a curated
link's rank is its position in `related`'s output, and a suggestion is a link `related` shows, never the article
itself."""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from recommender import Index, build_index
from recommender.evaluate.check import (BELOW_MINIMUM, BELOW_REVERSE, BEYOND_K, BLOCKED, check_markdown,
                                         editors_check)
from recommender.cli import cli
from recommender.evaluate.evaluation import DenseScorer
from recommender.evaluate.metrics import gold_ranks
from recommender.rank.learned import LearnedModel, save_model
from recommender.rank.overrides import Overrides
from recommender.rank.policy import TARGETS, Policy, policy_from_dict
from recommender.serve.app import create_app
from recommender.rank.learned import ALL_SIGNALS

from conftest import DEMO

ALL = 1000  # more links than the demo has articles: related's whole list


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    """The demo corpus (42 articles, 11 curated lists) with the hashing embedder."""
    folder = tmp_path_factory.mktemp("demo-check") / "idx"
    build_index(DEMO, folder, model="hashing", progress=False)
    return folder


@pytest.fixture
def demo_copy(demo_index, tmp_path):
    folder = tmp_path / "idx"
    shutil.copytree(demo_index, folder)
    return folder


def assert_same_as_related(index, items, policy=None, k=5):
    """Every rank and score the check reports is the one `related` gives for the same article (scores to 1e-5:
    the check scores articles in blocks, `related` one at a time, and float32 sums differ in the last digits)."""
    assert items
    for item in items:
        shown = index.related(item.id, ALL, policy=policy)
        position = {r.id: n for n, r in enumerate(shown, start=1)}
        score = {r.id: r.score for r in shown}
        first_k = [r.id for r in index.related(item.id, k, policy=policy)]
        for entry in item.agreed:
            assert entry.rank == position[entry.id] <= k and entry.id in first_k
            assert entry.score == pytest.approx(score[entry.id], abs=1e-5) or entry.pinned
        for entry in item.low:
            assert entry.id not in first_k
            if entry.rank is not None:
                assert entry.reason == BEYOND_K and entry.rank == position[entry.id] > k
                assert entry.score == pytest.approx(score[entry.id], abs=1e-5)
            else:
                assert entry.id not in position and entry.reason
        suggested = [r.id for r in index.related(item.id, k, policy=policy)
                     if r.id not in {e.id for e in item.agreed}]
        assert [m.id for m in item.missing] == suggested[:len(item.missing)]
        assert item.id not in [m.id for m in item.missing]  # never the article itself
        for m in item.missing:
            assert m.rank == position[m.id] and m.score == pytest.approx(score[m.id], abs=1e-5)


def test_check_ranks_are_positions_in_related(demo_index):
    with Index.open(demo_index) as index:
        items = editors_check(index, k=5, suggestions=50)
        assert len(items) == 11
        assert_same_as_related(index, items)
        # the embedding alone (what the check used to rank by) places some curated links elsewhere
        ids = index.data.store.ids()
        row_of = {x: r for r, x in enumerate(ids)}
        dense = DenseScorer(index.data.vectors.vectors())
        differ = 0
        for item in items:
            scores = dense.scores(np.array([row_of[item.id]]))[0].astype(np.float64)
            scores[row_of[item.id]] = -np.inf
            entries = [e for e in item.agreed + item.low if e.rank is not None]
            ranks = gold_ranks(scores, [row_of[e.id] for e in entries])
            differ += sum(r != e.rank for r, e in zip(ranks, entries))
        assert differ > 0
    # curated links ranked past k, or cut as unlike the articles they would link to ([links] min_reverse)
    assert any(e.reason in (BEYOND_K, BELOW_REVERSE) for item in items for e in item.low)


def test_check_never_suggests_the_article_itself_even_past_the_corpus(hashing_index):
    with Index.open(hashing_index) as index:
        n = len(index)
        items = editors_check(index, k=50, suggestions=50)  # k beyond the 11-article corpus
        assert items
        for item in items:
            assert item.id not in [m.id for m in item.missing]
            assert all(m.score is not None and np.isfinite(m.score) for m in item.missing)
            assert len(item.missing) + len(item.agreed) <= n - 1
        assert_same_as_related(index, items, k=50)


def test_check_follows_pins_and_blocks(demo_copy):
    with Index.open(demo_copy) as index:
        before = {item.id: item for item in editors_check(index, k=5)}
    article = "pocketbook-news.example.com/2025/02/mortgage-rates-fall"
    curated = [e.id for e in before[article].agreed + before[article].low]
    blocked = curated[0]
    with Index.open(demo_copy) as index:  # a pin to an article that may be linked ([links] targets)
        hidden = index.data.rule_columns().unlinkable(Policy())
        linkable = {i for i, hide in zip(index.data.store.ids(), hidden) if not hide}
    others = [x for x in ids_of(demo_copy) if x not in curated and x != article and x in linkable]
    pinned = others[-1]
    with Overrides.open(demo_copy) as store:
        store.block(article, blocked)
        store.pin(article, pinned)
    with Index.open(demo_copy) as index:
        items = editors_check(index, k=5, suggestions=10)
        assert_same_as_related(index, items)
        item = next(i for i in items if i.id == article)
        assert [e.reason for e in item.low if e.id == blocked] == [BLOCKED]
        assert item.missing[0].id == pinned and item.missing[0].rank == 1 and item.missing[0].pinned
        assert index.related(article, 1)[0].id == pinned


def test_check_follows_the_policy_minimum_score_and_k(demo_index):
    policy = policy_from_dict({"links": {"k": 4, "min_score": 0.2}}, "test policy")
    with Index.open(demo_index) as index:
        items = editors_check(index, policy=policy)
        assert all(item.k == 4 for item in items)
        assert_same_as_related(index, items, policy=policy, k=4)
        below = [e for item in items for e in item.low if e.reason == BELOW_MINIMUM]
        assert below and all(e.score < 0.2 for e in below)
        for item in items:
            assert all(m.score >= 0.2 for m in item.missing)
        text = check_markdown(items, {})
        assert "in its top 4" in text and "not linked (below the minimum score, score" in text


def test_check_uses_the_learned_ranking_related_uses(demo_copy):
    rng = np.random.default_rng(7)
    model = LearnedModel(signals=list(ALL_SIGNALS), mean=[0.0] * len(ALL_SIGNALS), scale=[1.0] * len(ALL_SIGNALS),
                         coef=rng.normal(size=len(ALL_SIGNALS)).tolist(), intercept=0.0, trained_on=11)
    save_model(demo_copy, model)
    learned_on = policy_from_dict({"ranking": {"learned": "on"}}, "test policy")
    with Index.open(demo_copy) as index:
        on = editors_check(index, k=5, policy=learned_on)
        off = editors_check(index, k=5, policy=Policy())
        assert_same_as_related(index, on, policy=learned_on)
        ranks = lambda items: {(i.id, e.id): e.rank for i in items for e in i.agreed + i.low}  # noqa: E731
        assert ranks(on) != ranks(off)  # the learned model does change the ranking being checked


def test_cli_check_uses_the_policy_file(demo_index, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text("[links]\nk = 3\nmin_score = 0.2\n")
    result = CliRunner().invoke(cli, ["check", "--index", str(demo_index), "--policy", str(policy), "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "in its top 3" in result.stdout and "below the minimum score" in result.stdout
    assert "score -inf" not in result.stdout


def test_editor_page_check_is_the_library_check_and_sees_new_overrides(demo_copy):
    article = "pocketbook-news.example.com/2025/02/mortgage-rates-fall"
    every = Policy().with_links(targets=TARGETS)  # its curated list names curated stubs too
    with Index.open(demo_copy) as index:
        expected = editors_check(index, ids=[article], policy=every)[0]
    with TestClient(create_app(demo_copy, editor=True, token="secret", policy=every)) as client:
        body = client.get("/check", params={"id": article}).json()
        assert body["k"] == 10 and [i["id"] for i in body["items"]] == [article]
        got = body["items"][0]
        assert got["agreed"] == [e.to_dict() for e in expected.agreed]
        assert got["low"] == [e.to_dict() for e in expected.low]
        assert got["missing"] == [e.to_dict() for e in expected.missing]
        everything = client.get("/check").json()["items"]
        assert next(i for i in everything if i["id"] == article) == got
        target = expected.agreed[0].id
        response = client.post("/overrides", json={"action": "block", "article": article, "target": target},
                               headers={"Authorization": "Bearer secret"})
        assert response.status_code == 200, response.text
        for params in ({"id": article}, {}):  # the cached whole check follows the new block too
            items = client.get("/check", params=params).json()["items"]
            item = next(i for i in items if i["id"] == article)
            assert {"id": target, "rank": None, "score": None, "pinned": False, "reason": BLOCKED} in item["low"]
        assert client.get("/check", params={"id": "no/such-article"}).status_code == 404


def ids_of(folder):
    with Index.open(folder) as index:
        return index.data.store.ids()


def test_check_reads_ranks_beyond_the_largest_k_a_policy_may_set(hashing_index, monkeypatch):
    """An article with more candidates than [links] k may ever be (1,000; one MDN page has 1,316) is checked, not
    refused: every=True takes all the ranked links without making a policy of that k."""
    import recommender.rank.policy as policy_module

    policy = Policy().with_links(k=2)
    with Index.open(hashing_index) as index:
        expected = editors_check(index, policy=policy, suggestions=5)
        monkeypatch.setattr(policy_module, "MAX_K", 2)  # fewer than the fixture's candidates per article
        assert editors_check(index, policy=policy, suggestions=5) == expected
