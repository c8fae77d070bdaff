"""The listwise objective against a brute-force reference, and the choice between objectives by measurement."""

import numpy as np
import pytest

from recommender.evaluate import objectives, training
from recommender.evaluate.objectives import fit, fit_rows, groups, listwise_loss


def brute_force_loss(w, Z, y, qs, offset, penalty):
    """For each query with links: minus the mean over its links of log softmax over its candidates; mean over
    those queries; plus the penalty."""
    per_query = []
    for q in np.unique(qs):
        at = qs == q
        if not y[at].any():
            continue
        t = Z[at] @ w + offset[at]
        s = Z[at] @ w
        log_norm = np.log(np.sum(np.exp(t)))
        per_query.append(-np.mean(s[y[at]] - log_norm))
    return np.mean(per_query) + 0.5 * penalty * w @ w


def test_listwise_loss_and_gradient_match_a_brute_force_reference():
    rng = np.random.default_rng(4)
    qs = np.sort(rng.integers(0, 7, size=90))
    Z = rng.normal(size=(90, 5))
    y = rng.random(90) < 0.2
    y[qs == 3] = False  # a query without links counts for nothing
    offset = np.where(y, 0.0, np.log(3.0))
    w = rng.normal(size=5)
    _, starts = groups(qs)
    loss, grad = listwise_loss(w, Z, y, starts, offset, 0.3)
    assert loss == pytest.approx(brute_force_loss(w, Z, y, qs, offset, 0.3), rel=1e-9)
    step = 1e-6
    numeric = [(brute_force_loss(w + step * e, Z, y, qs, offset, 0.3) -
                brute_force_loss(w - step * e, Z, y, qs, offset, 0.3)) / (2 * step) for e in np.eye(5)]
    assert np.allclose(grad, numeric, atol=1e-6)


def shifted_queries(n_queries=80, per_query=40, seed=2):
    """Signal 0 decides which candidates are linked within each query. Signal 1 is a per-query level plus noise:
    queries with a high level have more links, so it predicts a link across queries but says nothing within one."""
    rng = np.random.default_rng(seed)
    qs = np.repeat(np.arange(n_queries), per_query)
    level = rng.normal(size=n_queries) * 3
    X = rng.normal(size=(len(qs), len(training.ALL_SIGNALS))).astype(np.float32)
    X[:, 1] = np.repeat(level, per_query) + 2 * rng.normal(size=len(qs))
    y = np.zeros(len(qs), dtype=bool)
    for q in range(n_queries):
        rows = np.flatnonzero(qs == q)
        links = 1 + int(level[q] > 0) * 6
        y[rows[np.argsort(-(X[rows, 0] + rng.normal(size=per_query)))[:links]]] = True
    return X, y, qs


def test_listwise_ignores_what_only_tells_queries_apart_and_cross_validation_reports_both():
    X, y, qs = shifted_queries()
    point, listwise = fit(X, y, qs, "pointwise"), fit(X, y, qs, "listwise")
    assert abs(point.coef[1]) > 0.3 * abs(point.coef[0])  # pointwise leans on the level
    assert abs(listwise.coef[1]) < 0.1 * abs(listwise.coef[0])  # listwise does not
    queries = sorted(set(qs.tolist()))
    by_query = training.rows_by_query(qs)
    gold = {q: [int(r) for r in by_query[q][y[by_query[q]]]] for q in queries}
    default = {q: (by_query[q], np.zeros(len(by_query[q]))) for q in queries}
    report = training.cross_validate(X, y, qs, default, gold, folds=4, seed=1)
    figures = report["objectives"]
    assert set(figures) == {"pointwise", "listwise"} and figures["pointwise"] != figures["listwise"]
    assert report["learned"] == figures[report["objective"]] == figures[objectives.better(figures)]


def test_the_better_objective_is_chosen_by_recall_then_mrr_and_pointwise_on_a_tie():
    assert objectives.better({"pointwise": {"recall@10": 0.7, "mrr": 0.9},
                              "listwise": {"recall@10": 0.8, "mrr": 0.1}}) == "listwise"
    assert objectives.better({"pointwise": {"recall@10": 0.8, "mrr": 0.5},
                              "listwise": {"recall@10": 0.8, "mrr": 0.6}}) == "listwise"
    assert objectives.better({"listwise": {"recall@10": 0.8, "mrr": 0.6},
                              "pointwise": {"recall@10": 0.8, "mrr": 0.6}}) == "pointwise"


def test_a_listwise_score_reads_like_a_pointwise_logit():
    X, y, qs = shifted_queries()
    point, listwise = fit(X, y, qs, "pointwise").score(X), fit(X, y, qs, "listwise").score(X)
    # 0 is an even chance under both, so a minimum score of 0 keeps about the same share of links and others
    assert abs(np.mean(listwise[y] > 0) - np.mean(point[y] > 0)) < 0.1
    assert abs(np.mean(listwise[~y] < 0) - np.mean(point[~y] < 0)) < 0.1
    assert np.mean(listwise[y] > 0) > 0.6 and np.mean(listwise[~y] < 0) > 0.6


def test_a_sample_of_the_negatives_keeps_every_link(monkeypatch):
    monkeypatch.setattr(objectives, "MAX_FIT_ROWS", 100)
    y = np.zeros(1000, dtype=bool)
    y[::50] = True
    rows, rate = fit_rows(y)
    assert len(rows) == 100 and y[rows].sum() == 20 and rate == pytest.approx(80 / 980)


def test_an_unknown_objective_is_refused():
    X, y, qs = shifted_queries(n_queries=5)
    with pytest.raises(ValueError, match="objective must be one of"):
        fit(X, y, qs, "lambdarank")
