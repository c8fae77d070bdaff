"""The learned ranking: signals against hand-computed cases, training on synthetic data, cross-validation that
never ranks a query with a model fitted on it, and storage without pickle."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from recommender.evaluate import training
from recommender.evaluate.training import cross_validate, fit
from recommender.rank.learned import ALL_SIGNALS, LearnedModel, load_model, save_model
from recommender.store.manifest import IndexProblem, Manifest, write_manifest
from recommender.rank.policy import policy_from_dict
from recommender.rank.signals import ArticleFeatures, path_segments
from recommender.rank.signaltable import SIGNALS, pair_signals

FEW_LISTS = policy_from_dict({"ranking": {"train_min_lists": 3}})  # the fixture corpus has 11 articles


def info(row, id, title, topics=(), authors=(), published=None, source=None, url=None, page_type=None):
    return SimpleNamespace(row=row, id=id, title=title, topics=topics, authors=authors, published=published,
                           source=source, url=url, page_type=page_type)


def facts_of_four():
    return ArticleFeatures.from_infos([
        info(0, "a", "Cats and dogs", topics=("pets", "animals"), authors=("Ann",), published="2024-01-11",
             source="S", url="https://x.org/pets/cats/", page_type="guide"),
        info(1, "b", "Dogs at home", topics=("pets",), authors=("ann",), published="2024-01-01",
             source="s", url="https://x.org/pets/cats/dogs", page_type="guide"),
        info(2, "c", "Taxes", topics=("money",), authors=("Bo",), published=None, url="https://x.org/money"),
        info(3, "d", "Cats", topics=("pets", "animals"), authors=(), published="2024-02-10",
             url="https://x.org/pets/"),
    ])


def column(X, name):
    return X[:, SIGNALS.index(name)]


def test_each_signal_against_a_hand_computed_case():
    facts = facts_of_four()
    z = {"dense": np.array([1.0, 2.0, 3.0], np.float32), "lexical": np.array([0.5, 0.0, -1.0], np.float32)}
    X = pair_signals(0, np.array([1, 2, 3]), z, facts)
    assert column(X, "dense_z").tolist() == [1.0, 2.0, 3.0]
    assert column(X, "mention_z").tolist() == [0, 0, 0]  # no mention part: zero
    # titles {cats, and, dogs} vs {dogs, home}: 1 shared of 4 (words of three letters or more)
    assert column(X, "title_overlap")[0] == pytest.approx(1 / 4)
    # tags: "pets" in 3 of 4 articles (idf log 4/3), "animals" in 2 (log 2)
    assert column(X, "tag_overlap")[0] == pytest.approx(math.log(4 / 3))
    assert column(X, "tag_overlap")[2] == pytest.approx(math.log(4 / 3) + math.log(2))
    assert column(X, "tag_overlap")[1] == 0
    assert column(X, "same_author").tolist() == [1, 0, 0]  # case-insensitive
    assert column(X, "date_gap")[0] == pytest.approx(math.log1p(10))
    assert column(X, "dates_known").tolist() == [1, 0, 1] and column(X, "date_gap")[1] == 0
    assert column(X, "candidate_older").tolist() == [1, 0, 0]
    assert column(X, "same_source").tolist() == [1, 0, 0]
    # paths: pets/cats vs pets/cats/dogs (2 of 3, child), money (0), pets (1 of 2, parent)
    assert column(X, "path_proximity").tolist() == pytest.approx([2 / 3, 0, 1 / 2])
    assert column(X, "path_parent").tolist() == [1, 0, 1]
    assert column(X, "same_page_type").tolist() == [1, 0, 0]


def test_new_text_has_only_score_signals_and_paths_drop_index_pages():
    X = pair_signals(-1, np.array([0, 1]), {"dense": np.array([0.3, 0.1], np.float32)}, facts_of_four())
    assert X[:, 0].tolist() == pytest.approx([0.3, 0.1]) and not X[:, 1:].any()
    assert path_segments("https://docs.python.org/3/library/json.html", "x") == ("3", "library", "json")
    assert path_segments(None, "Web/API/index.html") == ("web", "api")


def test_tag_pool_takes_articles_sharing_rare_tags_most_weighted_first():
    from recommender.rank.signals import tag_pool

    facts = facts_of_four()  # pets in 3 articles, animals in 2, money in 1
    # depth 2: only tags held by at most 2 articles count (animals, money); b has neither
    assert [p.tolist() for p in tag_pool(facts, np.array([0, 1, 2]), 2)] == [[0, 3], [], [2]]
    # depth 3: pets counts too; a and d share log(4/3) + log 2, a and b only log(4/3)
    assert tag_pool(facts, np.array([0]), 3)[0].tolist() == [0, 3, 1]


def synthetic(n_queries=60, per_query=30, seed=1):
    """Candidate rows where only same_author decides the gold; the other signals are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_queries * per_query, len(ALL_SIGNALS))).astype(np.float32)
    author = rng.random(len(X)) < 0.1
    X[:, ALL_SIGNALS.index("same_author")] = author
    qs = np.repeat(np.arange(n_queries), per_query)
    y = author.copy()
    return X, y, qs


@pytest.mark.parametrize("objective", ["pointwise", "listwise"])
def test_training_learns_a_large_weight_for_the_signal_that_decides(objective):
    X, y, qs = synthetic()
    model = fit(X, y, qs, objective)
    weights = dict(zip(model.signals, model.coef))
    assert model.objective == objective
    assert weights["same_author"] > 3 * max(abs(w) for k, w in weights.items() if k != "same_author")


def test_cross_validation_never_ranks_a_query_with_a_model_fitted_on_it(monkeypatch):
    X, y, qs = synthetic(n_queries=25)
    X[:, ALL_SIGNALS.index("candidate_older")] = qs  # the query number rides along in a column
    seen = []
    real_fit = training.fit

    def spying_fit(Xf, yf, qf, objective="pointwise", negative_rate=1.0):
        seen.append(set(np.unique(Xf[:, ALL_SIGNALS.index("candidate_older")]).astype(int)))
        assert set(np.unique(qf).astype(int)) == seen[-1]
        return real_fit(Xf, yf, qf, objective, negative_rate)

    monkeypatch.setattr(training, "fit", spying_fit)
    default = {}
    gold = {}
    for q in range(25):
        rows = np.arange(30) + 1000 * q
        default[q] = (rows, np.zeros(30))
        gold[q] = [int(r) for r in rows[y[qs == q]]] or [int(rows[0])]
    report = cross_validate(X, y, qs, default, gold, folds=5, seed=3, objectives=("pointwise",))
    assert len(seen) == 5
    fold_of = report["fold_of"]
    for f, trained_on in enumerate(seen):
        tested = {q for q, g in fold_of.items() if g == f}
        assert tested and not (tested & trained_on)  # no query of fold f was in its training set
        assert trained_on | tested == set(range(25))
    assert report["learned"]["recall@10"] > report["default"]["recall@10"]


def test_stored_model_round_trips_as_json_and_a_tampered_file_is_refused(tmp_path):
    write_manifest(tmp_path, Manifest(model={}, preparation={}, count=0, dimension=3, built_at="now"))
    model = LearnedModel(signals=list(ALL_SIGNALS), mean=[0.0] * len(ALL_SIGNALS), scale=[1.0] * len(ALL_SIGNALS),
                         coef=[0.5] * len(ALL_SIGNALS), intercept=-1.0, trained_on=7,
                         cv={"learned": {"recall@10": 0.6}, "default": {"recall@10": 0.5}})
    path = save_model(tmp_path, model)
    doc = json.loads(path.read_text())  # plain JSON, no pickle
    assert doc["model"]["coef"] == model.coef
    assert "learned_ranker" in json.loads((tmp_path / "manifest.json").read_text())["files"]
    again = load_model(tmp_path)
    assert again == model and again.beats_default()
    doc["model"]["coef"][0] = 9.0
    path.write_text(json.dumps(doc))
    with pytest.raises(IndexProblem, match="learned ranking refused"):
        load_model(tmp_path)


def test_train_on_an_index_stores_a_model_that_related_uses(hashing_index, tmp_path):
    import shutil

    from recommender import Index
    from recommender.evaluate.training import train

    folder = tmp_path / "idx"
    shutil.copytree(hashing_index, folder)
    with Index.open(folder) as index:
        ids = index.data.store.ids()
        gold = {ids[i]: [ids[(i + 1) % len(ids)]] for i in range(len(ids))}  # each article's neighbour by row
        model, report = train(index, FEW_LISTS, folds=3, gold=gold)
        assert report["learned"]["queries"] == len(ids) and report["pairs"] > 0
        save_model(folder, model)
    with Index.open(folder) as index:  # the manifest names the model file and still verifies
        from recommender.rank.policy import Policy, policy_from_dict

        on = policy_from_dict({"ranking": {"learned": "on"}})
        hits = index.related(ids[0], k=3, policy=on)
        assert hits and "learned" in hits[0].parts
        assert all("learned" not in h.parts for h in index.related(ids[0], k=3, policy=Policy(
            ranking=policy_from_dict({"ranking": {"learned": "off"}}).ranking)))


class Memoriser:
    """A 'model' that scores 1 for the signal rows it was fitted on and 0 otherwise: if a query were ranked by a
    model fitted on its own list, its candidates' rows would be among the fitted ones."""

    def __init__(self, X):
        self.X = X
        self.seen = {row.tobytes() for row in X}
        self.hits = 0

    def score(self, X):
        hit = np.array([row.tobytes() in self.seen for row in X])
        self.hits += int(hit.sum())
        return hit.astype(np.float32)


def neighbour_gold(ids):
    return {ids[i]: [ids[(i + 1) % len(ids)]] for i in range(len(ids))}


def test_evaluate_ranks_each_query_with_a_model_fitted_without_it(hashing_index, monkeypatch):
    from recommender import Index
    from recommender.evaluate.evaluation import evaluate_index

    fitted = []

    def memorising_fit(X, y, qs, objective="pointwise", negative_rate=1.0):
        fitted.append(Memoriser(X))
        return fitted[-1]

    monkeypatch.setattr(training, "fit", memorising_fit)
    with Index.open(hashing_index) as index:
        ids = index.data.store.ids()
        ev = evaluate_index(index, neighbour_gold(ids), baselines=(), dense=False, folds=3, policy=FEW_LISTS)
    assert [s.system for s in ev.systems][:3] == ["system", "learned, existing articles (3-fold CV)",
                                                  "learned, new articles (3-fold CV)"]
    cv = ev.system("learned, new articles (3-fold CV)")
    # each protocol and objective: one fit per fold, and one per pair of folds (choosing the objective without the
    # fold it ranks); under `new` a split whose training rows keep no link (on this ring of 11) fits nothing
    assert len(cv.per_query) == len(ids) and 2 * (3 + 3) < len(fitted) <= 2 * 2 * (3 + 3)
    assert sum(m.hits for m in fitted) == 0  # no query's candidates were among its model's training rows
    assert fitted[0].score(fitted[0].X).all()  # while a model does recognise the rows it was fitted on


def test_evaluate_learned_row_beats_default_when_a_signal_decides_and_can_be_skipped(hashing_index):
    from recommender import Index
    from recommender.evaluate.evaluation import evaluate_index

    with Index.open(hashing_index) as index:
        ids = index.data.store.ids()
        # the gold is the other article under the same site or folder (4 pairs): URL-path proximity decides it,
        # which the models learn from the other folds; the default ranking ranks it first for none
        gold = {i: [j for j in ids if j != i and j.split("/")[0] == i.split("/")[0]] for i in ids}
        gold = {q: related for q, related in gold.items() if related}
        ev = evaluate_index(index, gold, baselines=(), dense=False, folds=3, policy=FEW_LISTS)
        system, cv = ev.system("system"), ev.system("learned, existing articles (3-fold CV)")
        assert ev.queries == 8 and system.overall["recall@1"] == 0.0
        assert cv.overall["recall@1"] >= 0.5 and cv.overall["mrr"] > system.overall["mrr"] + 0.3
        skipped = evaluate_index(index, gold, baselines=(), dense=False, learned=False, policy=FEW_LISTS)
        assert [s.system for s in skipped.systems] == ["system"]
        few = evaluate_index(index, dict(list(gold.items())[:2]), baselines=(), dense=False, policy=FEW_LISTS)
        assert [s.system for s in few.systems] == ["system"]
        assert "learned ranking not evaluated: 2 curated lists, at least 5 are needed to learn a ranking " \
               "(one per fold, 5 folds)" in few.notes


def test_cli_evaluate_learned_row_and_no_learned(hashing_index, tmp_path):
    from click.testing import CliRunner

    from recommender import Index
    from recommender.cli import cli

    with Index.open(hashing_index) as index:
        ids = index.data.store.ids()
    (tmp_path / "few.toml").write_text("[ranking]\ntrain_min_lists = 3\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"id": q, "related": r}) + "\n" for q, r in neighbour_gold(ids).items()))
    args = ["evaluate", "--index", str(hashing_index), "--gold", str(gold), "--json", "-q", "--baseline", "tfidf",
            "--policy", str(tmp_path / "few.toml")]
    with_cv = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert with_cv.exit_code == 0, with_cv.output
    assert [json.loads(l)["system"] for l in with_cv.stdout.splitlines()] == [
        "system", "learned, existing articles (5-fold CV)", "learned, new articles (5-fold CV)", "dense", "tfidf"]
    without = CliRunner().invoke(cli, args + ["--no-learned"], catch_exceptions=False)
    assert [json.loads(l)["system"] for l in without.stdout.splitlines()] == ["system", "dense", "tfidf"]
