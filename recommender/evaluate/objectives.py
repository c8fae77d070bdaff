"""The two ways a ranking is fitted to a site's curated lists, both linear over the standardised pair signals and
both stored as the same `LearnedModel` (a logit: 0 is an even chance under balanced classes):

* ``pointwise``: logistic regression (scikit-learn), each candidate pair a yes/no example, classes balanced;
* ``listwise``: a softmax over each query's candidates (the curated links should take the probability mass of
  their query's list; SciPy's L-BFGS), then one balanced logistic calibration of its score, so its scores read
  like the pointwise model's and the same `[links] min_score` means the same.

Which one a site gets is measured, not assumed: `training` cross-validates both on the site's own lists and keeps
the better (docs/ranking.md, "Listwise or pointwise").

    rows, rate = fit_rows(y)                          # every positive and a sample of the negatives
    model = fit(X[rows], y[rows], qs[rows], "listwise", negative_rate=rate)
"""

from __future__ import annotations

import numpy as np

from ..rank.learned import ALL_SIGNALS, LearnedModel

OBJECTIVES = ("pointwise", "listwise")
MAX_FIT_ROWS = 500_000  # candidate pairs a fit uses at most (all positives, a sample of the negatives)
LISTWISE_PENALTY = 0.1  # L2 weight per query (the loss is a mean over queries; python_docs: 0.03-1 within 0.01)


def fit_rows(y: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """The rows a fit uses, and the share of the negatives among them: all of them (1.0), or above MAX_FIT_ROWS
    every positive and a seeded uniform sample of the negatives."""
    rows = np.arange(len(y)) if rows is None else rows
    if len(rows) <= MAX_FIT_ROWS:
        return rows, 1.0
    positives, negatives = rows[y[rows]], rows[~y[rows]]
    wanted = max(0, MAX_FIT_ROWS - len(positives))
    keep = np.random.default_rng(0).choice(negatives, wanted, replace=False)
    return np.sort(np.concatenate([positives, keep])), wanted / max(1, len(negatives))


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit(X: np.ndarray, y: np.ndarray, qs: np.ndarray, objective: str = "pointwise", negative_rate: float = 1.0,
        C: float = 1.0) -> LearnedModel:
    """A model fitted on candidate pairs X (labels y, query of each row qs) by one of OBJECTIVES. negative_rate:
    the share of each query's negatives the rows keep (fit_rows), which the listwise softmax makes up for."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if len(y) > MAX_FIT_ROWS:
        chosen, rate = fit_rows(y)
        X, y, qs, negative_rate = X[chosen], y[chosen], qs[chosen], negative_rate * rate
    mean, scale = standardise(X)
    Z = (X - mean) / scale
    if objective == "pointwise":
        coef, intercept = _logistic(Z, y, C)
    else:
        coef, intercept = _calibrated(Z, y, listwise_weights(Z, y, qs, negative_rate))
    return LearnedModel(signals=list(ALL_SIGNALS[:X.shape[1]]), mean=mean.tolist(), scale=scale.tolist(),
                        coef=coef.tolist(), intercept=float(intercept), objective=objective)


def _logistic(Z: np.ndarray, y: np.ndarray, C: float = 1.0) -> tuple[np.ndarray, float]:
    """Logistic regression, classes balanced (the balanced weights make up for a sample of the negatives; on MDN,
    200,000 to 1,000,000 rows give the same cross-validated figures to 0.001)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=300, class_weight="balanced")
    clf.fit(Z, y)
    return clf.coef_[0], float(clf.intercept_[0])


def _calibrated(Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """w scaled and shifted into a balanced logit (one-signal logistic regression on Z @ w); the order within a
    query is w's. Left as it is when the calibration would turn it round (it never does on a fit that learned)."""
    if not y.any() or y.all():
        return w, 0.0
    a, b = _logistic((Z @ w)[:, None], y, C=1e6)
    return (w * a[0], b) if a[0] > 0 else (w, 0.0)


def groups(qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that puts each query's rows together, and where each query's block starts (and the end)."""
    order = np.argsort(qs, kind="stable")
    _, starts = np.unique(qs[order], return_index=True)
    return order, np.append(starts, len(qs))


def listwise_loss(w: np.ndarray, Z: np.ndarray, y: np.ndarray, starts: np.ndarray, offset: np.ndarray,
                  penalty: float, query_weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The listwise loss and its gradient. Rows in query blocks (starts, with the end); for each query with
    curated links, minus the mean over its links of log softmax(link) over the query's candidates, averaged over
    those queries, plus penalty/2 |w|². offset: added to each row's score inside the softmax only (log of how
    many negatives a sampled negative stands for). query_weight: each query block's weight instead of 1 (the
    transferable default balances corpora with it: recommender.evaluate.transfer)."""
    sizes = np.diff(starts)
    first = starts[:-1]
    yf = y.astype(np.float64)
    links = np.add.reduceat(yf, first)
    counts = np.ones(len(first)) if query_weight is None else np.asarray(query_weight, dtype=np.float64)
    weight = np.where(links > 0, counts / np.maximum(links, 1.0), 0.0)  # each query counts once (or its weight)
    queries = max(1e-12, float(counts[links > 0].sum()))
    s = Z @ w
    t = s + offset
    top = np.maximum.reduceat(t, first)
    e = np.exp(t - np.repeat(top, sizes))
    total = np.add.reduceat(e, first)
    log_norm = top + np.log(total)
    row_weight = np.repeat(weight, sizes) * yf
    loss = (-(row_weight @ s) + (weight * links) @ log_norm) / queries + 0.5 * penalty * (w @ w)
    share = e / np.repeat(total, sizes)
    grad = Z.T @ (np.repeat(weight * links, sizes) * share - row_weight) / queries + penalty * w
    return float(loss), grad


def listwise_weights(Z: np.ndarray, y: np.ndarray, qs: np.ndarray, negative_rate: float = 1.0,
                     penalty: float = LISTWISE_PENALTY, query_weight: dict | None = None) -> np.ndarray:
    """The weights minimising listwise_loss (L-BFGS from zero). Sampled negatives (negative_rate < 1) each stand
    for 1/negative_rate of them in the softmax's denominator. query_weight: query -> its weight (default 1)."""
    from scipy.optimize import minimize

    order, starts = groups(qs)
    Zq = np.ascontiguousarray(Z[order], dtype=np.float64)
    yq = y[order]
    offset = np.where(yq, 0.0, -np.log(negative_rate))
    weights = None if query_weight is None else np.array([query_weight[q] for q in qs[order][starts[:-1]].tolist()])
    result = minimize(listwise_loss, np.zeros(Z.shape[1]), args=(Zq, yq, starts, offset, penalty, weights), jac=True,
                      method="L-BFGS-B")
    return result.x


def better(figures: dict[str, dict]) -> str:
    """The objective with the higher cross-validated recall@10 (then MRR); pointwise on a tie."""
    return max(figures, key=lambda name: (figures[name]["recall@10"], figures[name]["mrr"], name == "pointwise"))
