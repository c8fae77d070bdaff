"""A ranking learned from a site's own curated related lists: a linear model over the signals of `signaltable.py`,
fitted on the hybrid ranker's candidates with the curated links as positives (pointwise logistic regression or a
listwise softmax, whichever cross-validated better on the site: recommender.evaluate.objectives).

Stored beside the index as plain JSON (`learned-ranker.json`: signal names, standardisation, coefficients, the
cross-validated figures, and a sha256 of its own content); never pickle. The file is also named and checksummed
in the manifest, so a changed file is refused on open.

    model = load_model(index.folder)                  # None when no model is stored
    cand = rescore(cand, facts, model, graph)         # a query's candidates, re-scored

Training (cross-validation over queries, the fit on every list) is in recommender.evaluate.training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..common.atomic import atomic_write_text
from ..store.manifest import LEARNED_MODEL_FILE, IndexProblem
from .graph_signals import LinkGraphs
from .signals import ArticleFeatures
from .signaltable import ALL_SIGNALS, GRAPH_SIGNALS, block_signals, graph_columns, pair_signals

FORMAT = 1


@dataclass
class LearnedModel:
    signals: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    trained_on: int = 0  # curated lists
    cv: dict = field(default_factory=dict)  # cross-validated figures (learned vs default), see train()
    curated: str = ""  # sha256 of the curated lists it was fitted on (the batch trains again when they change)
    lists: dict = field(default_factory=dict)  # those lists (ids), which the curated-graph signals read in use
    objective: str = "pointwise"  # how it was fitted (recommender.evaluate.objectives); the score reads the same

    def score(self, X: np.ndarray) -> np.ndarray:
        Z = (X - np.asarray(self.mean, np.float32)) / np.asarray(self.scale, np.float32)
        return Z @ np.asarray(self.coef, np.float32) + np.float32(self.intercept)

    def contributions(self, x: np.ndarray, X: np.ndarray | None = None) -> dict[str, float]:
        """Each signal's part of one pair's score (standardised value times weight; X, the query's other
        candidates, is not needed: the model is standardised over the site)."""
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return {name: round(float(v * w), 4) for name, v, w in zip(self.signals, z, self.coef)}

    def beats_default(self) -> bool:
        return bool(self.cv) and self.cv.get("learned", {}).get("recall@10", 0) > self.cv.get("default", {}).get(
            "recall@10", 0)


def signal_matrix(cand, facts: ArticleFeatures, graph: LinkGraphs | None) -> np.ndarray:
    """ALL_SIGNALS of one query's candidates (the graph signals 0 without graph facts)."""
    X = pair_signals(cand.query, cand.rows, cand.z, facts)
    if graph is None:
        return np.hstack([X, np.zeros((len(X), len(GRAPH_SIGNALS)), np.float32)])
    return np.hstack([X, graph_columns(graph, cand.query, cand.rows, cand.z, cand.raw["dense"])])


def graph_facts(vectors, lexical, model: LearnedModel, ids: list[str], moments=None, turned: bool = True) -> LinkGraphs:
    """The graph facts a stored model reads in use: its curated lists, mapped to the current rows (turned:
    LinkGraphs.build's)."""
    row_of = {i: r for r, i in enumerate(ids)}
    lists = {row_of[q]: [row_of[r] for r in related if r in row_of] for q, related in model.lists.items()
             if q in row_of}
    return LinkGraphs.build(vectors, lexical, lists, moments, turned)


def rescore(cand, facts: ArticleFeatures, model: LearnedModel, graph: LinkGraphs | None = None):
    """The candidates re-scored by the learned model, best first (ties by lower row), with their signals
    (`signals`, what the links show as each signal's part)."""
    return _ranked(cand, signal_matrix(cand, facts, graph), model)


def _ranked(cand, signals: np.ndarray, model: LearnedModel):
    """The candidates with these signals, scored by the model, best first (ties by lower row)."""
    cand.signals = signals
    cand.score = model.score(signals).astype(np.float32)
    return cand.take(np.lexsort((cand.rows, -cand.score)))


def rescore_many(cands: list, facts: ArticleFeatures, model: LearnedModel, graph: LinkGraphs | None = None) -> list:
    """`rescore` of a block of stored queries' candidates (every query row >= 0), the same numbers: the signals of
    the whole block in a few calls (signaltable.block_signals), then each query's scores and order as `rescore`."""
    X = block_signals(cands, facts, graph)
    starts = np.concatenate([[0], np.cumsum([len(cand.rows) for cand in cands], dtype=np.int64)])
    return [_ranked(cand, X[a:b], model) for cand, a, b in zip(cands, starts[:-1], starts[1:])]


class Rescorer:
    """A learned ranking's rescorer (the model over these article features and link graphs, graph None for a model
    that reads none): rescorer(cand) re-scores one query's candidates (`rescore`), rescorer.many(cands) a block
    of stored queries' (`rescore_many`)."""

    def __init__(self, model: LearnedModel, facts: ArticleFeatures, graph: LinkGraphs | None):
        self.model, self.facts, self.graph = model, facts, graph

    def __call__(self, cand):
        return rescore(cand, self.facts, self.model, self.graph)

    def many(self, cands: list) -> list:
        return rescore_many(cands, self.facts, self.model, self.graph)


# --- storage --------------------------------------------------------------------------------------------


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def signed_text(data: dict, fmt: int = FORMAT) -> str:
    """A model's JSON: its format, its data and the sha256 of the data."""
    return json.dumps({"format": fmt, "model": data, "sha256": _digest(data)}, indent=2) + "\n"


def read_signed(path: Path, fmt: int = FORMAT) -> dict:
    """The data of a model's JSON (signed_text); ValueError when its format or checksum does not match."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    data = doc["model"]
    if doc.get("format") != fmt or doc.get("sha256") != _digest(data):
        raise ValueError("checksum or format does not match")
    return data


def save_model(folder: Path, model: LearnedModel) -> Path:
    """Write the model (temp + rename), then name and checksum it in the manifest."""
    from ..store.manifest import file_entry, read_manifest, write_manifest

    path = Path(folder) / LEARNED_MODEL_FILE
    atomic_write_text(path, signed_text(asdict(model)))
    manifest = read_manifest(Path(folder))
    manifest.files["learned_ranker"] = file_entry(path)
    write_manifest(Path(folder), manifest)
    return path


def load_model(folder: Path) -> LearnedModel | None:
    """The stored model, None when there is none; a changed or malformed file is refused (IndexProblem)."""
    path = Path(folder) / LEARNED_MODEL_FILE
    if not path.exists():
        return None
    try:
        model = LearnedModel(**read_signed(path))
        if model.signals != list(ALL_SIGNALS) or not (len(model.coef) == len(model.mean) == len(model.scale)
                                                      == len(ALL_SIGNALS)):
            raise ValueError("made for other signals")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexProblem(f"{path}: learned ranking refused ({exc}); run `recommender train` again") from None
    return model
