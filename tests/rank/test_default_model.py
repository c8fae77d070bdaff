"""The transferable default ranking (recommender.rank.default_model): the shipped JSON and its checks, signals a site
does not have cannot move a score, and the switch from the fixed weights for sites with few curated lists."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from recommender import Index
from recommender.cli import cli
from recommender.rank import default_model as dm
from recommender.rank.default_model import (TRANSFER_SIGNALS, DefaultModel, default_model_text,
                                            load_default_model)
from recommender.rank.policy import policy_from_dict
from recommender.rank.signals import ArticleFeatures
from recommender.rank.signaltable import pair_signals
from recommender.store.manifest import IndexProblem

SITE_ONLY = ("tag_overlap", "same_author", "date_gap", "dates_known", "candidate_older")


def model(coef=None, wins=True, signals=TRANSFER_SIGNALS) -> DefaultModel:
    fixed = {"recall@10": 0.5, "mrr": 0.4}
    transfer = {"recall@10": 0.6 if wins else 0.4, "mrr": 0.45}
    return DefaultModel(signals=list(signals), coef=list(coef or np.linspace(1, 2, len(signals))),
                        loco={"a": {"transfer": transfer, "fixed": fixed}, "b": {"transfer": transfer, "fixed": fixed}})


@pytest.fixture
def shipped(monkeypatch):
    """Stand in a winning model for the package's (whatever the package ships)."""
    chosen = model()
    monkeypatch.setattr(dm, "_SHIPPED", (chosen,))
    return chosen


def test_the_shipped_model_loads_with_its_provenance():
    shipped = load_default_model()
    assert shipped is not None, "the package ships recommender/rank/default_model.json"
    assert set(shipped.signals) <= set(dm.feature_names()) and len(shipped.coef) == len(shipped.signals)
    assert {"corpora", "signals", "objective", "date", "code_version"} <= set(shipped.provenance)
    assert set(shipped.loco) == set(shipped.provenance["corpora"])  # measured leave-one-out on each corpus


def test_a_changed_or_mismatched_model_file_is_refused(tmp_path):
    path = tmp_path / "default_model.json"
    path.write_text(default_model_text(model()))
    assert load_default_model(path).coef == model().coef
    doc = json.loads(path.read_text())
    doc["model"]["coef"][0] += 1  # edited without its checksum
    path.write_text(json.dumps(doc))
    with pytest.raises(IndexProblem, match="default_model.json: shipped default ranking refused.*checksum"):
        load_default_model(path)
    graph = model(signals=("dense_z", "curated_in"), coef=[1.0, 1.0])  # a graph signal: a site without lists has none
    path.write_text(default_model_text(graph))
    with pytest.raises(IndexProblem, match="made for other signals"):
        load_default_model(path)
    path.write_text("{not json")
    with pytest.raises(IndexProblem, match="refused"):
        load_default_model(path)


def infos(tags: bool):
    """Eight articles; with tags=True, tags, authors and dates too."""
    out = []
    for i in range(8):
        out.append(SimpleNamespace(id=f"a{i}", title=f"story {i} about {'solar wind'.split()[i % 2]}", url=None,
                                   source=None, page_type=None,
                                   topics=[f"t{i % 3}", "energy"] if tags else [],
                                   authors=[f"writer{i % 2}"] if tags else [],
                                   published=f"2024-0{1 + i % 5}-1{i}" if tags else None))
    return out


@pytest.mark.parametrize("tags", [False, True])
def test_signals_a_site_does_not_have_cannot_move_a_score(tags):
    facts = ArticleFeatures.from_infos(infos(tags))
    rows = np.arange(1, 8)
    rng = np.random.default_rng(0)
    z = {name: rng.normal(size=len(rows)).astype(np.float32) for name in ("dense", "lexical", "mention", "window")}
    X = pair_signals(0, rows, z, facts)
    base = model()
    heavy = model(coef=[c + 50 * (s in SITE_ONLY) for s, c in zip(base.signals, base.coef)])
    moved = not np.allclose(base.score(X), heavy.score(X))
    assert moved == tags  # without tags, authors and dates their weights change nothing, with them they do
    if not tags:
        assert all(abs(heavy.contributions(x, X)[s]) < 1e-9 for x in X for s in SITE_ONLY)
        assert np.isclose(heavy.score(X).mean(), 0, atol=1e-4)  # 0 is the average candidate


def test_sites_with_few_lists_get_the_shipped_model_where_it_wins(index_copy, shipped, monkeypatch):
    with Index.open(index_copy) as index:
        lists = index.data.store.curated_count()
        assert lists == 2
        assert index.learned_model() is shipped  # 2 lists, fewer than train_min_lists (50)
        assert "transferable default" in index.ranking_in_force()
        assert index.learned_model(policy_from_dict({"ranking": {"train_min_lists": 2}})) is None
        assert index.learned_model(policy_from_dict({"ranking": {"learned": "off"}})) is None
        results = index.related("energy-desk.example.com/2024/05/02/grid-batteries-desert-town", k=3, explain=False)
        signals = set(results[0].parts["learned"])
        assert signals == set(shipped.signals)
    monkeypatch.setattr(dm, "_SHIPPED", (model(wins=False),))  # measured, but it lost somewhere: fixed weights
    with Index.open(index_copy) as index:
        assert index.learned_model() is None and index.ranking_in_force().startswith("default (fixed weights")


def test_policy_info_and_explain_say_which_ranking_is_in_force(index_copy, shipped, tmp_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["policy"], catch_exceptions=False).output
    assert "shipped transferable default (learned across a, b)" in out
    out = runner.invoke(cli, ["info", "--index", str(index_copy), "--json"], catch_exceptions=False).output
    assert "transferable default" in json.loads(out)["ranking"]
    policy = tmp_path / "few.toml"
    policy.write_text("[ranking]\ntrain_min_lists = 2\n")
    out = runner.invoke(cli, ["info", "--index", str(index_copy), "--policy", str(policy)],
                        catch_exceptions=False).output
    assert "default (fixed weights; 2 curated lists)" in out
    out = runner.invoke(cli, ["related", "energy-desk.example.com/2024/05/02/grid-batteries-desert-town", "--index", str(index_copy), "--explain", "--compute",
                              "-q"], catch_exceptions=False).output
    assert "why (ranking: transferable default" in out
