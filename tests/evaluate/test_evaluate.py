import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from recommender.rank.policy import TARGETS, Links, Policy
from conftest import EVERY_TARGET
from recommender import Index
from recommender.cli import cli
from recommender.evaluate.evaluation import (
    DenseScorer, evaluate_index, gold_ranks, metrics_from_ranks, rank_system, select_queries, top_rows,
)
from recommender.evaluate.gold import GoldError, gold_from_curated, load_gold_jsonl
from recommender.store.lexical import BM25Ranker, TfidfRanker, lexical_document


def test_metrics_hand_computed():
    # gold items at ranks 1 and 4 of the full ranking, two gold items
    m = metrics_from_ranks([4, 1], ks=(1, 5, 10))
    assert m["recall@1"] == 0.5 and m["recall@5"] == 1.0
    assert m["precision@1"] == 1.0 and m["precision@5"] == pytest.approx(2 / 5)
    assert m["hit@1"] == 1.0
    assert m["mrr"] == 1.0
    assert m["map"] == pytest.approx((1 / 1 + 2 / 4) / 2)
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(5)) / ideal)


def test_metrics_gold_beyond_k_and_k_larger_than_corpus():
    m = metrics_from_ranks([30], ks=(10, 1000))
    assert m["recall@10"] == 0.0 and m["hit@10"] == 0.0 and m["ndcg@10"] == 0.0
    assert m["recall@1000"] == 1.0  # k beyond the corpus: everything retrieved
    assert m["precision@1000"] == pytest.approx(1 / 1000)
    assert m["mrr"] == pytest.approx(1 / 30) and m["map"] == pytest.approx(1 / 30)


def test_metrics_empty_gold_is_an_error():
    with pytest.raises(ValueError):
        metrics_from_ranks([])


def test_ties_rank_lower_rows_first():
    scores = np.array([0.5, 0.9, 0.5, 0.5, -np.inf])
    assert gold_ranks(scores, [0, 2, 3, 1]) == [2, 3, 4, 1]
    assert top_rows(scores, 3).tolist() == [1, 0, 2]


def test_rank_system_equals_bruteforce_full_sort():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"a{i}" for i in range(60)]
    gold = {q: sorted(rng.choice([r for r in range(60) if r != q], 3, replace=False).tolist()) for q in range(10)}
    result = rank_system(DenseScorer(vectors), list(range(10)), gold, ids)
    for q, outcome in zip(range(10), result.per_query):
        sims = vectors[q] @ vectors.T
        order = [r for r in np.argsort(-sims, kind="stable") if r != q]
        for g in gold[q]:
            assert outcome.gold_ranks[ids[g]] == order.index(g) + 1
        assert [i for i, _ in outcome.top[:5]] == [ids[r] for r in order[:5]]
    mean_recall10 = np.mean([
        sum(1 for g in gold[q] if outcome.gold_ranks[ids[g]] <= 10) / 3 for q, outcome in zip(range(10), result.per_query)
    ])
    assert result.overall["recall@10"] == pytest.approx(mean_recall10)
    assert result.recall_curve[9] == pytest.approx(mean_recall10)


def test_gold_loader(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "a", "related": ["b", "a", "c", "b"]}\n\n{"id": "d", "related": []}\n')
    assert load_gold_jsonl(path) == {"a": ["b", "c"], "d": []}
    path.write_text('{"id": "a", "related": ["b"]}\n{"id": "x"}\n')
    with pytest.raises(GoldError, match=r"gold.jsonl:2: not a gold line"):
        load_gold_jsonl(path)
    assert gold_from_curated([("a", "b"), ("a", "a"), ("a", "b"), ("c", "d")]) == {"a": ["b"], "c": ["d"]}


def test_tfidf_and_bm25_rank_the_matching_document_first():
    docs = [lexical_document(t, x) for t, x in [
        ("Solar batteries", "grid storage batteries solar evening peak"),
        ("Sourdough bread", "starter flour dough proof loaf"),
        ("Home batteries", "storage batteries households solar tariffs"),
        ("Marathon", "running training long run pace"),
    ]]
    for ranker in (TfidfRanker(docs), BM25Ranker(docs)):
        idx, _ = ranker.top_k(np.array([0]), 1)
        assert idx[0, 0] == 2
    # TF-IDF drops words seen in one document only (min_df=2, the published baseline); BM25 keeps them
    assert np.argmax(BM25Ranker(docs).scores_for_text("flour dough loaf")) == 1


def test_tfidf_scores_equal_dense_cosine():
    docs = ["alpha beta gamma", "beta gamma delta", "gamma delta epsilon", "alpha epsilon zeta", "beta zeta"]
    ranker = TfidfRanker(docs)
    dense = ranker.matrix.toarray()
    assert np.allclose(ranker.scores(np.arange(5)), dense @ dense.T, atol=1e-6)


def test_select_queries_sample_is_reproducible():
    gold = {f"q{i}": ["x"] for i in range(50)}
    assert select_queries(gold, 10, seed=1) == select_queries(gold, 10, seed=1)
    assert select_queries(gold, 10, seed=1) != select_queries(gold, 10, seed=2)
    assert select_queries(gold, None, seed=1) == sorted(gold)


def test_evaluate_index_on_curated_lists(hashing_index):
    with Index.open(hashing_index) as index:
        ev = evaluate_index(index, baselines=("tfidf", "bm25", "random"))
    assert [s.system for s in ev.systems] == ["system", "dense", "tfidf", "bm25", "random"]
    assert ev.queries == 2  # the two news items with curated lists
    for s in ev.systems:
        assert 0.0 <= s.overall["recall@10"] <= 1.0 and s.overall["queries"] == 2
        # 11 articles: every gold item is inside the top 10 of 10 candidates
        assert s.overall["recall@10"] == 1.0


def test_cli_evaluate_json_report_and_gold_file(hashing_index, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "text/marathon", "related": ["text/match-report", "not-in-index"]}) + "\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["evaluate", "--index", str(hashing_index), "--gold", str(gold), "--json",
                                 "--report", str(tmp_path / "rep"), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["system"] for r in records] == ["system", "dense", "tfidf", "bm25", "random"]
    assert all({"recall@10", "mrr", "map", "ndcg@10", "coverage@10"} <= set(r) for r in records)
    assert (tmp_path / "rep" / "recall_at_k.png").read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| system |" in report and "dropped because their target is not in the index: 1" in report
    per_query = [json.loads(l) for l in (tmp_path / "rep" / "per_query.jsonl").read_text().splitlines()]
    assert per_query[0]["query"] == "text/marathon"
    assert set(per_query[0]["systems"]["system"]["gold_ranks"]) == {"text/match-report"}


def test_cli_check_markdown(hashing_index, tmp_path):
    every = tmp_path / "every.toml"  # the fixture's curated lists name curated stubs: link them too
    every.write_text(EVERY_TARGET)
    result = CliRunner().invoke(cli, ["check", "--index", str(hashing_index), "-k", "3", "-q", "--policy", str(every)],
                                catch_exceptions=False)
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("# Editors' check")
    assert "2 articles have curated lists" in text
    assert "agreed (rank" in text or "ranked low (rank" in text


def test_per_query_files_show_the_links_scores_not_rank_numbers(hashing_index, tmp_path):
    from recommender.evaluate.report import write_report

    with Index.open(hashing_index) as index:
        evaluation = evaluate_index(index, baselines=())
        write_report(evaluation, tmp_path, {})
        expected = {}
        for outcome in evaluation.system("system").per_query:
            gold = set(outcome.gold_ranks)
            # evaluation ranks whole lists (no minimum score): the same as `related` with no minimum
            everything = Policy(links=Links(min_score=None, min_reverse=None, targets=TARGETS))  # and every kind of target
            shown = [r for r in index.related(outcome.query, 10, policy=everything) if r.id not in gold]
            assert shown
            expected[outcome.query] = [(r.id, r.score) for r in shown]
    text = (tmp_path / "per_query.md").read_text()
    for links in expected.values():
        for i, score in links[:5]:
            assert f"`{i}` {score:.3f}" in text  # the score `related` prints, not a position (e.g. 199.000)
    for line in (tmp_path / "per_query.jsonl").read_text().splitlines():
        record = json.loads(line)
        top = record["systems"]["system"]["top_not_in_gold"]
        assert [i for i, _ in top] == [i for i, _ in expected[record["query"]]]
        assert [s for _, s in top] == pytest.approx([s for _, s in expected[record["query"]]], abs=1e-4)


def test_evaluate_columns_follow_the_k_asked(hashing_index, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["evaluate", "--index", str(hashing_index), "-k", "10", "--report",
                                 str(tmp_path / "rep"), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("system"))
    assert header.split() == ["system", "recall@10", "precision@10", "hit@10", "mrr", "map", "ndcg@10",
                              "coverage@10", "seconds"]
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| system | recall@10 | precision@10 | hit@10 | mrr | map | ndcg@10 | coverage@10 | seconds |" in report
    assert "recall@1 " not in report and "recall@20" not in report

    result = runner.invoke(cli, ["evaluate", "--index", str(hashing_index), "-k", "5", "--json", "-q"],
                           catch_exceptions=False)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    at_k = {key for key in records[0] if "@" in key}
    assert at_k == {"recall@5", "precision@5", "hit@5", "ndcg@5", "coverage@5", "coverage@5_share"}
    assert {"mrr", "map"} <= set(records[0])

    result = runner.invoke(cli, ["evaluate", "--index", str(hashing_index), "-k", "3", "-k", "5", "-q"],
                           catch_exceptions=False)
    header = next(line for line in result.stdout.splitlines() if line.startswith("system"))
    assert header.split()[1:4] == ["recall@3", "recall@5", "precision@5"] and "ndcg@5" in header
    assert "@10" not in header


def test_fewer_than_20_queries_are_called_unreliable_in_every_output(hashing_index, tmp_path):
    runner = CliRunner()
    note = "only 2 queries: these figures are not reliable"
    result = runner.invoke(cli, ["evaluate", "--index", str(hashing_index), "--report", str(tmp_path / "rep"),
                                 "-q"], catch_exceptions=False)
    assert f"note: {note}" in result.stdout
    assert f"- note: {note}" in (tmp_path / "rep" / "report.md").read_text()
    result = runner.invoke(cli, ["evaluate", "--index", str(hashing_index), "--json", "-q"], catch_exceptions=False)
    assert all(note in json.loads(line)["notes"] for line in result.stdout.splitlines())


def test_fusion_weights_reduce_to_each_ranker_and_zscores_are_standard():
    from recommender.rank.fusion import FusionScorer, zscores

    class Fixed:
        def __init__(self, matrix, name):
            self.matrix, self.name = np.asarray(matrix, dtype=np.float32), name

        def scores(self, rows):
            return self.matrix[rows]

    dense = Fixed([[1.0, 0.2, 0.9, 0.1], [0.3, 1.0, 0.2, 0.8]], "system")
    lexical = Fixed([[1.0, 5.0, 0.0, 2.0], [7.0, 1.0, 3.0, 0.0]], "tfidf")
    rows = np.array([0, 1])
    z = zscores(dense.scores(rows))
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-5)
    assert np.array_equal(np.argsort(FusionScorer(dense, lexical, 0.0).scores(rows)), np.argsort(dense.scores(rows)))
    assert np.array_equal(np.argsort(FusionScorer(dense, lexical, 1.0).scores(rows)), np.argsort(lexical.scores(rows)))
    mixed = FusionScorer(dense, lexical, 0.5)
    assert mixed.name == "hybrid-tfidf-0.5"
    np.testing.assert_allclose(mixed.scores(rows), 0.5 * zscores(lexical.scores(rows)) + 0.5 * z, atol=1e-6)
    assert np.allclose(zscores(np.ones((1, 4))), 0)
    with pytest.raises(ValueError):
        FusionScorer(dense, lexical, 1.5)


def test_cli_evaluate_hybrid_system(hashing_index):
    from click.testing import CliRunner

    from recommender.cli import cli

    result = CliRunner().invoke(cli, ["evaluate", "--index", str(hashing_index), "--json", "-q", "--baseline",
                                      "random", "--hybrid", "0.5"])
    assert result.exit_code == 0, result.output
    systems = [json.loads(line)["system"] for line in result.stdout.splitlines()]
    assert systems == ["system", "dense", "random", "hybrid-tfidf-0.5"]
