"""The transferable default ranking: a linear model learned across sites (leave-one-corpus-out measured), shipped
with the package as plain JSON (`default_model.json`, never pickle), for sites with too few curated lists to learn
their own (`[ranking] train_min_lists`).

It reads only signals every site has (`TRANSFER_SIGNALS`: the hybrid ranker's z-scores, title overlap, and the
tag, author and date signals) and no link-graph signal (a site without lists has none). Each signal is centred over
the query's candidates before it is weighed, so a signal that is constant for a query (a site without tags, authors
or dates; a query without a date) is 0 for every candidate and cannot move a score, and a score of 0 is the
average candidate, as with the fixed weights (`[links] min_score`).

    model = load_default_model()      # None when the package holds none; a changed file is refused
    cand = rescore(cand, facts, model)                 # recommender.rank.learned.rescore, graph None

Fitted and measured by recommender.evaluate.transfer (scripts/measure_transfer.py; docs/ranking.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..store.manifest import IndexProblem
from .learned import read_signed, signed_text
from .signaltable import LIST_FREE_SIGNALS, SIGNALS

DEFAULT_MODEL_FILE = Path(__file__).with_name("default_model.json")
FORMAT = 1
TRANSFER_SIGNALS = ("dense_z", "lexical_z", "mention_z", "window_z", "window_max_z", "title_overlap",
                    "tag_overlap", "same_author", "date_gap", "dates_known", "candidate_older")
# the other list-free signals of the signal table, which the transfer may be measured with (scripts/measure_transfer.py
# --add; path_proximity, path_parent and same_page_type measured, not shipped: docs/ranking.md)
OPTIONAL_SIGNALS = tuple(name for name in SIGNALS if name in LIST_FREE_SIGNALS and name not in TRANSFER_SIGNALS)
RANKED = ("dense_z", "lexical_z", "window_z", "window_max_z")  # "rr:NAME": 1 / (RR_K + rank among candidates)
RR_K = 10
FIXED = {"window_z": 0.6, "lexical_z": 0.2, "mention_z": 0.05}  # "fixed_score": policy.Ranking's default weights
NORMALISATIONS = ("centre", "standardise")  # per query: minus the candidates' mean (and over their deviation)


def feature_names() -> tuple[str, ...]:
    return TRANSFER_SIGNALS + OPTIONAL_SIGNALS + tuple(f"rr:{name}" for name in RANKED) + ("fixed_score",)


def _raw(block: np.ndarray, names) -> np.ndarray:
    """One query's candidates (rows of SIGNALS or more) as the named features, before normalising."""
    cols = []
    for name in names:
        if name.startswith("rr:"):
            values = block[:, SIGNALS.index(name[3:])]
            rank = np.empty(len(values))
            rank[np.argsort(-values, kind="stable")] = np.arange(len(values))
            cols.append(1.0 / (RR_K + rank))
        elif name == "fixed_score":
            cols.append(sum(w * block[:, SIGNALS.index(s)] for s, w in FIXED.items()))
        else:
            cols.append(block[:, SIGNALS.index(name)])
    return np.stack(cols, axis=1) if cols else np.zeros((len(block), 0))


def query_features(X: np.ndarray, names, normalise: str = "centre", starts=None) -> np.ndarray:
    """The named features of X's rows centred (or standardised) over each query's rows. starts: where each
    query's block of consecutive rows starts (and the end); None: X is one query's candidates."""
    X = np.asarray(X, dtype=np.float64)
    bounds = [0, len(X)] if starts is None else list(starts)
    out = np.zeros((len(X), len(names)))
    for a, b in zip(bounds[:-1], bounds[1:]):
        block = _raw(X[a:b], names)
        if not len(block):
            continue
        centred = block - block.mean(axis=0)
        if normalise == "standardise":
            std = block.std(axis=0)
            centred = np.where(std > 1e-9, centred / np.where(std > 1e-9, std, 1.0), 0.0)
        out[a:b] = centred
    return out


@dataclass
class DefaultModel:
    """Weights over TRANSFER_SIGNALS (centred per query); what it was trained on and how it measured."""

    signals: list[str]
    coef: list[float]
    normalise: str = "centre"
    objective: str = "listwise"
    provenance: dict = field(default_factory=dict)  # corpora, objective, date, code version
    loco: dict = field(default_factory=dict)  # corpus -> {"transfer": {...}, "fixed": {...}, "tfidf", "bm25"}
    intercept: float = 0.0  # scores are centred per query: 0 is the average candidate
    trained_on: int = 0  # curated lists of the site: none (it was trained on other sites)
    cv: dict = field(default_factory=dict)
    curated: str = "shipped default"  # what the graph facts are keyed by (it reads none)
    lists: dict = field(default_factory=dict)
    kind: str = "transferable default"
    uses_graph = False  # it reads no link-graph signal (IndexData.link_graphs gives it none)

    def score(self, X: np.ndarray) -> np.ndarray:
        """One query's candidates (rows of SIGNALS, or of learned.ALL_SIGNALS, which start with them) scored."""
        return (query_features(X, self.signals, self.normalise) @ np.asarray(self.coef)).astype(np.float32)

    def contributions(self, x: np.ndarray, X: np.ndarray | None = None) -> dict[str, float]:
        """Each signal's part of one pair's score (x: one row of X, the query's candidates it is centred among)."""
        X = np.asarray(x[None, :] if X is None else X)
        row = int(np.flatnonzero((X == x).all(axis=1))[0])
        F = query_features(X, self.signals, self.normalise)
        return {name: round(float(v * w), 4) for name, v, w in zip(self.signals, F[row], self.coef)}

    def beats_default(self) -> bool:
        """It replaces the fixed weights only when it beat them on every corpus, leave-one-corpus-out."""
        return bool(self.loco) and all(
            row["transfer"]["recall@10"] > row["fixed"]["recall@10"] for row in self.loco.values())


def default_model_text(model: DefaultModel) -> str:
    return signed_text(asdict(model), FORMAT)


def shipped_model() -> DefaultModel | None:
    """The package's default model, read once per process."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = (load_default_model(),)
    return _SHIPPED[0]


_SHIPPED: tuple | None = None


def describe_shipped(policy) -> str:
    """Comment lines for `recommender policy`: which ranking a site without its own learned model gets."""
    r = policy.ranking
    if r.learned == "off":
        return "# ranking: the fixed weights above ([ranking] learned = \"off\")\n"
    model = shipped_model()
    if model is None or not model.beats_default():
        why = "none is shipped" if model is None else "it did not beat them on every corpus"
        return (f"# ranking: the fixed weights above, or the site's own learned ranking (`recommender train`, the "
                f"batch from {r.train_min_lists} curated lists); the shipped transferable default is not used "
                f"({why})\n")
    return (f"# ranking: a site with fewer than {r.train_min_lists} curated lists ([ranking] train_min_lists) and no "
            f"learned ranking of its own uses the shipped transferable default (learned across "
            f"{', '.join(model.loco)}), not the fixed weights above\n")


def load_default_model(path: Path | None = None) -> DefaultModel | None:
    """The shipped default model (None when the package holds none); a changed or malformed file, or one made
    for other signals, is refused with IndexProblem naming the file."""
    path = Path(path or DEFAULT_MODEL_FILE)
    if not path.exists():
        return None
    try:
        model = DefaultModel(**read_signed(path, FORMAT))
        if set(model.signals) - set(feature_names()) \
                or len(model.coef) != len(model.signals) or model.normalise not in NORMALISATIONS:
            raise ValueError("made for other signals")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexProblem(f"{path}: shipped default ranking refused ({exc}); reinstall the package") from None
    return model
