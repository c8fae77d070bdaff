"""Learning the transferable default ranking across sites (recommender.rank.default_model) and measuring it
leave-one-corpus-out: for each corpus X, a model fitted on the other corpora's curated lists ranks X's queries.

Each corpus's candidates and signals come from its own index, as a site's own training collects them
(`training.collect`: the default ranking's candidates, `signals.pair_signals`); the fixed-weight default is the
candidates' own order, TF-IDF and BM25 rank the whole corpus (`evaluate_index`), all on the same queries.
Corpora are balanced: each counts as much in a fit, whatever its number of queries.

    data = collect_corpus(index, gold, "python_docs")    # CorpusData (save()/load() to keep it)
    table = leave_one_out([a, b, c], Config())            # corpus -> figures
    model = fit_default([a, b, c], Config())              # rank.default_model.DefaultModel, every corpus
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..rank.default_model import TRANSFER_SIGNALS, DefaultModel, query_features
from .training import summarise

TRAIN_QUERIES = 2000  # queries of one corpus a fit uses at most (seeded sample; corpora are balanced anyway)


@dataclass
class CorpusData:
    """One corpus's curated queries: candidate signals in query blocks, labels, the fixed default's scores."""

    name: str
    X: np.ndarray  # rows x SIGNALS, float32, each query's candidates consecutive
    y: np.ndarray  # bool: a curated link
    rows: np.ndarray  # the candidate's row in its index
    fixed: np.ndarray  # the fixed-weight default's score
    starts: np.ndarray  # where each query's block starts, and the end
    wanted: np.ndarray  # curated links of each query (in the index)
    baselines: dict  # {"tfidf": {"recall@10", "mrr"}, "bm25": ...}

    @property
    def queries(self) -> int:
        return len(self.wanted)

    def save(self, path: Path) -> None:
        np.savez(path, X=self.X, y=self.y, rows=self.rows, fixed=self.fixed, starts=self.starts, wanted=self.wanted,
                 baselines=np.array([[v["recall@10"], v["mrr"]] for v in self.baselines.values()]),
                 names=np.array(list(self.baselines)), name=np.array(self.name))

    @classmethod
    def load(cls, path: Path) -> "CorpusData":
        with np.load(path, allow_pickle=False) as f:
            baselines = {str(n): {"recall@10": float(r), "mrr": float(m)} for n, (r, m) in zip(f["names"], f["baselines"])}
            return cls(str(f["name"]), f["X"], f["y"], f["rows"], f["fixed"], f["starts"], f["wanted"], baselines)


def collect_corpus(index, gold: dict[str, list[str]], name: str, progress: bool = False) -> CorpusData:
    """The curated queries' candidates and signals (the fixed default ranking's), and the lexical baselines."""
    from ..rank.policy import Policy
    from .evaluation import evaluate_index
    from .metrics import gold_in_index
    from .training import collect

    report = evaluate_index(index, gold, baselines=("tfidf", "bm25"), dense=False, learned=False, overrides=False)
    baselines = {s.system: {"recall@10": s.overall["recall@10"], "mrr": s.overall["mrr"]}
                 for s in report.systems if s.system in ("tfidf", "bm25")}
    ids = index.data.store.ids()
    row_of = {i: r for r, i in enumerate(ids)}
    kept, _ = gold_in_index(gold, row_of)
    by_row = {row_of[q]: [row_of[r] for r in rel] for q, rel in kept.items()}
    cands, signals = collect(index.ranker(Policy(), learned=False), index.data.article_features(), by_row, progress)
    return corpus_data(name, cands, signals, by_row, baselines)


def corpus_data(name: str, cands: dict, signals: dict, lists: dict[int, list[int]], baselines: dict) -> CorpusData:
    """CorpusData of the queries of `lists` (row -> its linked rows, the labels) from their collected candidates
    and signals (`training.collect`)."""
    queries = sorted(lists)
    sizes = [len(cands[q].rows) for q in queries]
    return CorpusData(name=name, X=np.vstack([signals[q] for q in queries]).astype(np.float32),
                      y=np.concatenate([np.isin(cands[q].rows, lists[q]) for q in queries]),
                      rows=np.concatenate([cands[q].rows for q in queries]),
                      fixed=np.concatenate([cands[q].score for q in queries]).astype(np.float32),
                      starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                      wanted=np.array([len(lists[q]) for q in queries]), baselines=baselines)


def figures(data: CorpusData, score: np.ndarray) -> dict[str, float]:
    """Recall@10 and MRR of the candidates ranked by score (ties by lower row), curated links outside the
    candidates missed: as `training.summarise` and scripts/measure_weights.py count them."""
    ranks, gold = {}, {}
    for q, (a, b) in enumerate(zip(data.starts[:-1], data.starts[1:])):
        order = np.lexsort((data.rows[a:b], -score[a:b]))
        found = np.flatnonzero(data.y[a:b][order]) + 1.0
        missing = int(data.wanted[q]) - len(found)
        ranks[q] = list(found) + [np.inf] * missing
        gold[q] = [0] * int(data.wanted[q])
    return summarise(ranks, gold)


@dataclass(frozen=True)
class Config:
    """How the transferable default is fitted."""

    signals: tuple = TRANSFER_SIGNALS
    normalise: str = "centre"
    objective: str = "listwise"  # or "pointwise" (balanced logistic regression)
    penalty: float = 0.1


def _sample(data: CorpusData, seed: int = 0) -> np.ndarray:
    """The query blocks a fit uses: all of them, or TRAIN_QUERIES of them (seeded)."""
    if data.queries <= TRAIN_QUERIES:
        return np.arange(data.queries)
    return np.sort(np.random.default_rng(seed).choice(data.queries, TRAIN_QUERIES, replace=False))


def training_rows(corpora: list[CorpusData], config: Config):
    """Features, labels, query number and query weight (each corpus weighing 1 in all) of the fit."""
    feats, labels, qs, weight = [], [], [], {}
    for c, data in enumerate(corpora):
        blocks = _sample(data)
        for q in blocks:
            a, b = data.starts[q], data.starts[q + 1]
            if not data.y[a:b].any():
                continue
            feats.append(query_features(data.X[a:b], config.signals, config.normalise))
            labels.append(data.y[a:b])
            key = c * 10_000_000 + int(q)
            qs.append(np.full(b - a, key))
            weight[key] = 1.0
        used = [k for k in weight if k // 10_000_000 == c]
        for key in used:
            weight[key] = 1.0 / len(used)
    return np.vstack(feats), np.concatenate(labels), np.concatenate(qs), weight


def fit_default(corpora: list[CorpusData], config: Config) -> DefaultModel:
    """A DefaultModel fitted on these corpora's curated lists, each corpus weighing the same."""
    from .objectives import listwise_weights

    F, y, qs, weight = training_rows(corpora, config)
    if config.objective == "listwise":
        coef = listwise_weights(F, y, qs, penalty=config.penalty, query_weight=weight)
    else:  # balanced per corpus and class: duplicate-free weights through a sample-weighted fit
        coef = _weighted_logistic(F, y, qs, weight)
    return DefaultModel(signals=list(config.signals), coef=[float(v) for v in coef], normalise=config.normalise,
                        objective=config.objective)


def _weighted_logistic(F, y, qs, weight) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    corpus = qs // 10_000_000
    w = np.zeros(len(y))
    for c in np.unique(corpus):
        for label in (True, False):
            where = (corpus == c) & (y == label)
            w[where] = 1.0 / max(1, where.sum())
    clf = LogisticRegression(C=1.0, max_iter=500, fit_intercept=True)
    clf.fit(F, y, sample_weight=w * len(y) / w.sum())
    return clf.coef_[0]


def score_corpus(model: DefaultModel, data: CorpusData) -> np.ndarray:
    return query_features(data.X, model.signals, model.normalise, data.starts) @ np.asarray(model.coef)


def leave_one_out(corpora: list[CorpusData], config: Config) -> dict[str, dict]:
    """Corpus -> the transferable default fitted on the others ("transfer"), the fixed weights ("fixed") and
    the lexical baselines, recall@10 and MRR each, and the transfer model's weights."""
    out = {}
    for i, data in enumerate(corpora):
        model = fit_default([c for j, c in enumerate(corpora) if j != i], config)
        out[data.name] = {"transfer": figures(data, score_corpus(model, data)),
                          "fixed": figures(data, data.fixed), **data.baselines,
                          "weights": dict(zip(model.signals, [round(v, 4) for v in model.coef]))}
    return out
