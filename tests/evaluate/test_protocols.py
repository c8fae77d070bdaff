"""The evaluation protocols of the learned ranking: under `new` no signal of a held-out query reads a list that
names a held-out article; under `as-published` a query sees only articles published no later than it and lists of
older ones."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from recommender.evaluate import protocols, training
from recommender.evaluate.protocols import FoldView, lists_before, published_columns, published_gold
from recommender.rank.graph_signals import LinkGraphs, Pairs
from recommender.rank.signaltable import GRAPH_SIGNALS
from recommender.rank.learned import ALL_SIGNALS, LearnedModel


def graph_case(n=30, seed=0):
    """Random unit vectors, random curated lists of 20 owners, and every other article as each query's candidate."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    gold = {q: sorted(set(rng.choice([r for r in range(n) if r != q], 3, replace=False).tolist())) for q in range(20)}
    cands = {}
    for q in gold:
        rows = np.array([r for r in range(n) if r != q])
        cands[q] = SimpleNamespace(rows=rows, raw={"dense": vectors[rows] @ vectors[q]},
                                   z={"dense": rng.normal(size=len(rows)), "lexical": rng.normal(size=len(rows))})
    return LinkGraphs.build(vectors, None, gold), Pairs.of(cands, sorted(gold)), gold


def col(extra, name):
    return extra[:, GRAPH_SIGNALS.index(name)]


def test_new_protocol_hides_the_held_out_articles_from_every_list_and_every_fit():
    graph, pairs, gold = graph_case()
    held = {0, 3, 5, 8}
    view = FoldView(graph, pairs, gold, "new")
    lists = view.lists(held)
    assert not held & set(lists) and not any(held & set(related) for related in lists.values())
    facts = graph.with_lists(lists)
    for matrix in (facts.lists, facts.lists_t, facts.co):  # no link to or from a held-out article
        dense = matrix.toarray()
        assert not dense[sorted(held)].any() and not dense[:, sorted(held)].any()
    extra, train = view(held)
    of_held = np.isin(pairs.query, sorted(held))
    names_held = np.isin(pairs.rows, sorted(held))
    for name in ("curated_back", "co_curated"):  # nothing names the held-out queries
        assert not col(extra, name)[of_held].any()
    for name in ("curated_in", "neighbour_lists"):  # nothing links to a held-out candidate
        assert not col(extra, name)[names_held].any()
    assert not (train & (of_held | names_held)).any() and train[~of_held & ~names_held].all()
    # the existing protocol reads the training lists' links to the held-out articles: the test above can fail
    existing, existing_train = FoldView(graph, pairs, gold, "existing")(held)
    assert col(existing, "curated_back")[of_held].any() and col(existing, "curated_in")[names_held].any()
    assert existing_train[names_held & ~of_held].all()


def test_as_published_cuts_candidates_gold_and_lists_to_what_existed_that_day():
    graph, pairs, gold = graph_case(seed=2)
    days = np.floor(np.arange(30) / 2) + 0.3  # articles 2d and 2d+1 are published on day d, at 07:12
    days[7] = np.nan
    day = np.floor(days)
    cut, left_out = published_gold(days, gold)
    assert 7 not in cut and left_out["undated"] == 1
    expected = {q: [r for r in related if day[r] <= day[q]] for q, related in gold.items() if q != 7}
    assert cut == {q: related for q, related in expected.items() if related}
    assert left_out["no_gold_left"] == sum(1 for related in expected.values() if not related) > 0
    cands = {q: SimpleNamespace(rows=pairs.rows[pairs.starts[i]:pairs.starts[i + 1]],
                                raw={"dense": pairs.cosine[pairs.starts[i]:pairs.starts[i + 1]]},
                                z={"dense": pairs.strength[pairs.starts[i]:pairs.starts[i + 1]]})
             for i, q in enumerate(sorted(gold))}
    for c in cands.values():
        c.take = lambda keep, c=c: SimpleNamespace(rows=c.rows[keep], raw={"dense": c.raw["dense"][keep]},
                                                   z={"dense": c.z["dense"][keep]})
    columns = published_columns(graph, cands, gold, days, sorted(cut))
    for q, (keep, extra) in columns.items():
        rows = cands[q].rows[keep]
        assert len(rows) and (np.floor(days[rows]) <= np.floor(days[q])).all()  # nothing newer than the query
        assert (q ^ 1) in rows or q ^ 1 == 7  # the article published the same day is a candidate
        assert not col(extra, "curated_back").any() and not col(extra, "co_curated").any()
        lists = lists_before(days, gold, day[q])
        assert all(day[o] < day[q] and all(day[r] < day[q] for r in rel)
                   for o, rel in lists.items())  # only lists of older articles, cut to older articles
        assert set(lists) == {o for o in gold if day[o] < day[q]}
        # what the query's columns read is those lists: curated_in counts their links to each candidate
        counts = np.bincount([r for rel in lists.values() for r in rel], minlength=30)
        assert np.allclose(col(extra, "curated_in"), np.log1p(counts[rows]))


def dated_corpus(tmp_path, n=40):
    """n short articles in pairs on the same topic, published one a day; the gold links each to its partner."""
    topics = ["rivers", "bread", "chess", "comets", "violins", "glaciers", "tennis", "orchids", "bridges", "owls"]
    lines = []
    for i in range(n):
        topic = topics[(i // 2) % len(topics)]
        lines.append({"id": f"a{i:02d}", "title": f"{topic.title()} note {i}",
                      "text": f"A note about {topic} number {i}. " + " ".join(topics[(i + j) % 10] for j in range(5)),
                      "published": f"2024-01-{i % 28 + 1:02d}" if i < 28 else f"2024-02-{i - 27:02d}"})
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    gold = {f"a{i:02d}": [f"a{i ^ 1:02d}"] for i in range(n)}
    return tmp_path / "corpus", gold


@pytest.fixture(scope="module")
def dated_index(tmp_path_factory):
    from recommender import build_index

    tmp = tmp_path_factory.mktemp("dated")
    corpus, gold = dated_corpus(tmp)
    build_index(corpus, tmp / "idx", model="hashing", progress=False)
    return tmp / "idx", gold


def self_naming_model(X, y, qs, objective="pointwise", negative_rate=1.0):
    """A 'model' that scores a candidate only by the lists naming the query (it memorises who links back)."""
    coef = [1.0 if name in protocols.SELF_NAMING else 0.0 for name in ALL_SIGNALS]
    return LearnedModel(signals=list(ALL_SIGNALS), mean=[0.0] * len(coef), scale=[1.0] * len(coef), coef=coef,
                        intercept=0.0, objective=objective)


def test_evaluate_new_articles_cannot_be_scored_through_lists_that_name_them(dated_index, monkeypatch):
    from recommender import Index
    from recommender.evaluate.evaluation import evaluate_index

    folder, gold = dated_index
    monkeypatch.setattr(training, "fit", self_naming_model)
    with Index.open(folder) as index:
        ev = evaluate_index(index, gold, baselines=("tfidf",), dense=False, folds=4, policy=policy_from("new"))
        ids = index.data.store.ids()
        rows = {ids.index(q): [ids.index(r) for r in rel] for q, rel in gold.items()}
        by_protocol = training.cross_validated_candidates(index, policy_from("new"), rows, folds=4)
    names = [s.system for s in ev.systems]
    assert names == ["system", "learned, existing articles (4-fold CV)", "learned, new articles (4-fold CV)",
                     "learned, as published (4-fold CV)", "tfidf", "system, as published", "tfidf, as published"]
    # existing: the partner's list names the query whenever the partner sits in another fold (3 in 4)
    found = [c.rows[0] == rows[q][0] and c.score[0] > c.score[1] for q, c in by_protocol["existing"]["cands"].items()]
    assert np.mean(found) > 0.6
    # new: no candidate of a held-out query is named by anything it may read: every score is the same
    assert all(np.ptp(c.score) == 0 for c in by_protocol["new"]["cands"].values())
    published = ev.system(names[3])
    ids = {o.query: o for o in published.per_query}
    # as published: the pair's older article has no gold left (its partner is newer): left out and counted
    assert published.overall["queries"] == 20 and len(ids) == 20
    assert any("as published: 20 of 40 queries" in n and "20 whose gold" in n for n in ev.notes)
    for o in published.per_query + ev.system("tfidf, as published").per_query:
        assert all(top <= o.query for top, _ in o.top)  # ids sort by publication order: nothing newer


@pytest.mark.parametrize("learned_for", ["new", "existing"])
def test_train_reports_every_protocol_and_chooses_for_the_policys_one(dated_index, tmp_path, learned_for):
    from click.testing import CliRunner

    from recommender import Index
    from recommender.cli import cli

    folder, gold = dated_index
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[ranking]\nlearned_for = "{learned_for}"\ntrain_min_lists = 10\n')
    gold_path = tmp_path / "gold.jsonl"
    gold_path.write_text("".join(json.dumps({"id": q, "related": r}) + "\n" for q, r in gold.items()))
    result = CliRunner().invoke(cli, ["train", "--index", str(folder), "--gold", str(gold_path), "--folds", "4",
                                      "--policy", str(policy), "--dry-run", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"chosen for {learned_for} articles" in result.stdout
    for label in ("existing articles", "new articles", "as published"):
        assert f"  {label} " in result.stdout
    assert "(0 undated and 20 without older gold left out)" in result.stdout
    with Index.open(folder) as index:
        model, report = training.train(index, policy_from(learned_for), folds=4, gold=gold)
    assert report["protocol"] == learned_for and set(report["protocols"]) == set(protocols.PROTOCOLS)
    # the objective is chosen, and the model judged ([ranking] learned = "auto"), under the policy's protocol
    assert model.cv["learned"] == report["protocols"][learned_for]["learned"]
    assert model.cv["objectives"][model.objective] == report["protocols"][learned_for]["learned"]
    # the model reads every signal: the lists naming an old article still count when the batch re-ranks it
    assert any(model.coef[ALL_SIGNALS.index(name)] for name in protocols.SELF_NAMING)


def policy_from(learned_for):
    from recommender.rank.policy import policy_from_dict

    return policy_from_dict({"ranking": {"learned_for": learned_for, "train_min_lists": 10}})  # 40 lists here
