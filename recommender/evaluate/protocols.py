"""Evaluation protocols of the learned ranking: what a query ranked under cross-validation may see of the site's
curated lists, its candidates and its gold.

* ``existing``: the query's own list is hidden; every other list (the training folds'), including their links to
  the query, feeds its graph signals. It measures an old article whose neighbours already point at it.
* ``new``: the test fold's articles are also removed from every list, both the training labels (a training query's
  candidate that belongs to the test fold is left out of the fit) and the graph facts its signals read
  (``curated_in``, ``curated_back``, ``co_curated``, ``neighbour_lists``): no list names a test article, as on the
  day it is published.
* ``as-published`` (corpora with dates): each query is ranked among the articles published no later than its day,
  its graph signals read only the lists of articles published before that day (each cut to articles published
  before it), and its gold is cut to the articles published no later than it. A query without a date, or whose gold
  is empty once cut, is left out of that row (a note counts them). The model that scores it is its fold's `new`
  model: fitted without any list naming the fold's articles, but on lists of articles newer than some queries (the
  model's weights are the only thing it carries over; no signal value of the query reads such a list).

The protocol a site cares about is the policy's `[ranking] learned_for` (default ``new``): `train` chooses the
objective by the figures under it, and `[ranking] learned = "auto"` uses the model when it beat the default
ranking under it. The model is fitted on every signal: for a just-published article the two signals that only
read lists naming the query itself (`SELF_NAMING`) are zero for every candidate, so the others rank it; fitting
with them zeroed measured no better for new articles and worse for old ones (docs/ranking.md, "Protocols").

    view = FoldView(graph, pairs, gold, "new")
    extra, train_rows = view(held)    # graph columns of every row with the held-out queries hidden; rows to fit
"""

from __future__ import annotations

import numpy as np

from ..rank.graph_signals import LinkGraphs, Pairs
from ..rank.signaltable import SELF_NAMING, graph_columns_many

PROTOCOLS = ("existing", "new", "as-published")
LABELS = {"existing": "existing articles", "new": "new articles", "as-published": "as published"}


def system_name(protocol: str, folds: int) -> str:
    """The evaluation row's name, e.g. `learned, new articles (5-fold CV)`."""
    return f"learned, {LABELS[protocol]} ({folds}-fold CV)"


def lists_without(gold: dict[int, list[int]], owners, hidden) -> dict[int, list[int]]:
    """The curated lists of `owners` with every article of `hidden` taken out of them."""
    hidden = set(hidden)
    return {q: [r for r in gold[q] if r not in hidden] for q in owners}


class FoldView:
    """What the models of one cross-validation split see: view(held) gives the graph columns of every row (in the
    order of `pairs`) computed from the lists of the queries not held out, with the held-out articles removed from
    them under ``new``, and the rows a model may be fitted on (the other queries' rows; under ``new`` without the
    held-out articles as candidates)."""

    def __init__(self, graph: LinkGraphs, pairs: Pairs, gold: dict[int, list[int]], protocol: str = "existing"):
        if protocol not in ("existing", "new"):
            raise ValueError(f"a fold view is existing or new, not {protocol!r}")
        self.graph, self.pairs, self.gold = graph, pairs, gold
        self.protocol = protocol
        self.queries = sorted(gold)

    def lists(self, held) -> dict[int, list[int]]:
        """The curated lists the held-out queries' signals (and the fit) may read."""
        owners = [q for q in self.queries if q not in held]
        return lists_without(self.gold, owners, held if self.protocol == "new" else ())

    def __call__(self, held) -> tuple[np.ndarray, np.ndarray]:
        held = set(int(q) for q in held)
        held_rows = np.fromiter(held, dtype=np.int64, count=len(held))
        extra = graph_columns_many(self.graph.with_lists(self.lists(held)), self.pairs)
        train = ~np.isin(self.pairs.query, held_rows)
        if self.protocol == "new":
            train &= ~np.isin(self.pairs.rows, held_rows)
        return extra, train


# --- as published ------------------------------------------------------------------------------------------


def publication_days(days: np.ndarray) -> np.ndarray:
    """The day of publication of each row (whole days; NaN without a date)."""
    return np.floor(np.asarray(days, dtype=np.float64))


def has_dates(days: np.ndarray, gold: dict[int, list[int]]) -> bool:
    """Whether the as-published protocol applies: most curated queries have a date."""
    day = publication_days(days)
    return bool(gold) and np.isfinite(day[sorted(gold)]).mean() >= 0.5


def published_gold(days: np.ndarray, gold: dict[int, list[int]]) -> tuple[dict[int, list[int]], dict[str, int]]:
    """Each query's gold cut to the articles published no later than it; the queries left (with a date and gold
    left), and how many were left out for want of a date or of gold."""
    day = publication_days(days)
    kept, undated, emptied = {}, 0, 0
    for q, related in gold.items():
        if not np.isfinite(day[q]):
            undated += 1
            continue
        cut = [r for r in related if day[r] <= day[q]]
        if cut:
            kept[q] = cut
        else:
            emptied += 1
    return kept, {"undated": undated, "no_gold_left": emptied}


def visible(days: np.ndarray, query: int, rows: np.ndarray) -> np.ndarray:
    """Which candidate rows were published no later than the query (its day or before)."""
    day = publication_days(days)
    return day[rows] <= day[query]


def lists_before(days: np.ndarray, gold: dict[int, list[int]], day: float) -> dict[int, list[int]]:
    """The curated lists of the articles published before `day`, each cut to articles published before it."""
    when = publication_days(days)
    older = set(np.flatnonzero(when < day).tolist())
    return {q: [r for r in related if r in older] for q, related in gold.items() if q in older}


def published_columns(graph: LinkGraphs, cands: dict, gold: dict[int, list[int]], days: np.ndarray,
                      queries) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each query, the positions of its candidates published no later than it and their graph columns from
    the lists older than its day (one graph per day; no list among them names the query)."""
    when = publication_days(days)
    out = {}
    by_day: dict[float, list[int]] = {}
    for q in queries:
        by_day.setdefault(float(when[q]), []).append(q)
    for day, day_queries in sorted(by_day.items()):
        facts = graph.with_lists(lists_before(days, gold, day))
        keep = {q: np.flatnonzero(visible(days, q, cands[q].rows)) for q in day_queries}
        pairs = Pairs.of({q: cands[q].take(keep[q]) for q in day_queries}, day_queries)
        extra = graph_columns_many(facts, pairs)
        for i, q in enumerate(day_queries):
            out[q] = (keep[q], extra[pairs.starts[i]:pairs.starts[i + 1]])
    return out
