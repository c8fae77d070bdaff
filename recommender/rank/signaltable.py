"""The ranking signals, one table: each signal of a (query, candidate) pair, where its values come from, how it is
computed on a query's bounded candidate set (and pair by pair, for the nightly reach), its fixed weight if it has
one, whether it reads curated lists, and what the nightly reach needs of it. Everything that names signals reads
`TABLE`:

* the fixed-weight score (`ranking.HybridRanker`): the parts marked `weighted` (`WEIGHTED_PARTS`), each weighed
  with the policy's `[ranking]` key of the same name;
* the learned ranking's columns (`ALL_SIGNALS`, the names `learned-ranker.json` stores, in order): `pair_signals`
  (score and site signals) and `graph_columns` / `graph_columns_many` (graph signals), for a query, for training
  and for `explain` (`Index._links` shows the weighted parts, `learned.signal_matrix` the learned ones); and
  `block_signals`, the same values bit for bit for a block of stored queries at once (the batch's links phase);
* the nightly reach under a learned ranking (recommender.batch.learned_pairs): `pair_columns`, every signal pair
  by pair; `full_run_reason` for a signal whose corpus statistic the batch does not freeze;
* the evaluation protocols (`SELF_NAMING`: the signals that read lists naming the query itself).

Adding a signal: its function (`name(facts, query, rows)` of `signals.ArticleFeatures` for a site signal) and one
entry here; the learned ranking then weighs it after `recommender train` (a stored model made for other signals
is refused until then). docs/design.md, "Adding a ranking signal", works an example through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..common.blocks import spans
from . import graph_signals as g
from . import signals as s

# where a signal's values come from
SCORE = "score"  # a part of the hybrid ranker: its per-query z-score (Candidates.z[part])
SITE = "site"  # the two articles' stored facts (signals.ArticleFeatures): column(facts, query, rows)
GRAPH = "graph"  # the link graphs (graph_signals.LinkGraphs): column(graph, view), view a graph_signals view

# which curated lists it reads
LIST_FREE = ""  # none: a site without lists has it (the transferable default may weigh it)
OTHER_LISTS = "lists"  # lists, never the query's own (the same whether or not the query has a list)
QUERY_LISTS = "lists naming the query"  # zero for a query no list names (evaluate.protocols: a new article)

# what the nightly reach (recommender.batch.learned_reach) needs of it to tell a list that cannot change
REACH = {
    "pair": "a function of the two articles alone: L3 scores the pair exactly",
    "moments": "the embedding's frozen moments (mean vector, second moment)",
    "row": "the query's row statistics, frozen (batch.incremental.ROW_PARTS)",
    "graph": "a graph fact of one article, folded into its signature (learned_reach.graph_signatures)",
    "voters": "the query's recorded strongest candidates (learned_reach.recording, LN)",
    "unfrozen": "a corpus statistic the batch does not freeze: a full run while it is in use (full_run)",
}


@dataclass(frozen=True)
class Signal:
    """One ranking signal (a column of the learned ranking)."""

    name: str
    source: str  # SCORE, SITE or GRAPH
    column: Callable | None = None  # SITE: (facts, query, rows) -> values; GRAPH: (graph, view) -> values
    pairs: Callable | None = None  # SITE: (facts, qs, cs) -> values pair by pair, float64, whose float32 values
    # are the column's (None: the column serves pair by pair, its query broadcast)
    block: Callable | None = None  # SITE: (facts, qs, cs, starts) -> a block of queries' column values, bit for
    # bit (block_signals; None: `pairs` gives them, else the column query by query)
    part: str | None = None  # SCORE: the hybrid ranker's part whose z-score it is
    weighted: bool = False  # SCORE: a part of the fixed-weight score (its weight: the policy's [ranking] `part`)
    lists: str = LIST_FREE
    for_text: bool = False  # also computed for a query by text (no row: the site and list signals are 0)
    reach: str = "pair"  # a key of REACH
    full_run: Callable | None = None  # "unfrozen": (site facts) -> whether the batch must rank everything again
    full_run_reason: str = ""


def _score(name: str, part: str, weighted: bool, reach: str = "row") -> Signal:
    return Signal(name, SCORE, part=part, weighted=weighted, for_text=True, reach=reach)


TABLE = (
    _score("dense_z", "dense", True, reach="moments"),
    _score("lexical_z", "lexical", True),
    _score("mention_z", "mention", True),
    Signal("title_overlap", SITE, s.title_overlap, s.title_overlap_pairs, s.title_overlap_block),
    Signal("tag_overlap", SITE, s.tag_overlap, s.tag_overlap_pairs, s.tag_overlap_block, reach="unfrozen",
           full_run=lambda facts: bool(getattr(facts.tags, "nnz", 0)),
           full_run_reason="learned ranking with tags (the tag IDF is not frozen)"),
    Signal("same_author", SITE, s.same_author, s.same_author_pairs, s.same_author_block),
    Signal("date_gap", SITE, s.date_gap, s.date_gap_pairs),
    Signal("dates_known", SITE, s.dates_known, s.dates_known_pairs),
    Signal("candidate_older", SITE, s.candidate_older, s.candidate_older_pairs),
    Signal("same_source", SITE, s.same_source, s.same_source),
    Signal("path_proximity", SITE, s.path_proximity, s.path_proximity_pairs),
    Signal("path_parent", SITE, s.path_parent, s.path_parent_pairs),
    Signal("same_page_type", SITE, s.same_page_type, s.same_page_type),
    _score("window_z", "window", True),
    _score("window_max_z", "window_max", False),  # the best single window match: learned only
    Signal("names_out", GRAPH, g.names_out),
    Signal("names_in", GRAPH, g.names_in),
    Signal("named_by", GRAPH, g.named_by, reach="graph"),
    Signal("dense_rz", GRAPH, g.dense_rz_of, for_text=True, reach="moments"),
    Signal("curated_in", GRAPH, g.curated_in, lists=OTHER_LISTS, reach="graph"),
    Signal("curated_back", GRAPH, g.curated_back, lists=QUERY_LISTS, reach="graph"),
    Signal("co_curated", GRAPH, g.co_curated, lists=QUERY_LISTS, reach="graph"),
    Signal("neighbour_lists", GRAPH, g.neighbour_lists, lists=OTHER_LISTS, reach="voters"),
)

# the learned ranking's columns: the score and site signals (pair_signals), then the graph signals (graph_columns)
FIRST = tuple(x for x in TABLE if x.source != GRAPH)
GRAPHED = tuple(x for x in TABLE if x.source == GRAPH)
SIGNALS = tuple(x.name for x in FIRST)
GRAPH_SIGNALS = tuple(x.name for x in GRAPHED)
ALL_SIGNALS = SIGNALS + GRAPH_SIGNALS  # what a learned model weighs, in column order
WEIGHTED_PARTS = tuple(x.part for x in TABLE if x.weighted)  # the fixed-weight score's parts
SELF_NAMING = tuple(x.name for x in TABLE if x.lists == QUERY_LISTS)
LIST_FREE_SIGNALS = tuple(x.name for x in TABLE if x.lists == LIST_FREE)


def pair_signals(query: int, rows: np.ndarray, z: dict[str, np.ndarray],
                 facts: s.ArticleFeatures) -> np.ndarray:
    """The SIGNALS matrix (len(rows) x len(SIGNALS)) of one query's candidates; query -1 (new text) has only the
    score signals."""
    out = np.zeros((len(rows), len(SIGNALS)), dtype=np.float32)
    for col, signal in enumerate(FIRST):
        if signal.source == SCORE and signal.part in z:
            out[:, col] = z[signal.part]
    if query < 0 or not len(rows):
        return out
    rows = np.asarray(rows, dtype=np.int64)
    for col, signal in enumerate(FIRST):
        if signal.source == SITE:
            out[:, col] = signal.column(facts, query, rows)
    return out


def block_signals(cands: list, facts: s.ArticleFeatures, graph: g.LinkGraphs | None) -> np.ndarray:
    """ALL_SIGNALS of a block of stored queries' candidates (each query row >= 0; Candidates with .query, .rows,
    .z and .raw["dense"]), one matrix, the queries' rows one after another: bit for bit what `pair_signals` and
    `graph_columns` give query by query, in a few calls for the block (the batch's links phase)."""
    pairs = g.block_pairs(cands)
    qs, cs = pairs.query, pairs.rows
    out = np.zeros((len(cs), len(ALL_SIGNALS)), dtype=np.float32)
    for col, signal in enumerate(FIRST):
        if signal.source == SCORE:
            for cand, a, b in zip(cands, pairs.starts[:-1].tolist(), pairs.starts[1:].tolist()):
                if signal.part in cand.z:
                    out[a:b, col] = cand.z[signal.part]
        elif signal.block is not None:
            out[:, col] = signal.block(facts, qs, cs, pairs.starts)
        elif signal.pairs is not None:
            out[:, col] = signal.pairs(facts, qs, cs)
        else:  # a column for one query only
            for q, a, b in spans(qs, pairs.starts):
                out[a:b, col] = signal.column(facts, q, cs[a:b])
    if graph is not None:
        out[:, len(FIRST):] = _graph_matrix(graph, g.QueryBlock(graph, pairs), len(cs), True)
    return out


def _graph_matrix(graph, view, count: int, with_row: bool) -> np.ndarray:
    out = np.zeros((count, len(GRAPH_SIGNALS)), dtype=np.float32)
    if count:
        for col, signal in enumerate(GRAPHED):
            if with_row or signal.for_text:
                out[:, col] = signal.column(graph, view)
    return out


def graph_columns(graph: g.LinkGraphs, query: int, rows: np.ndarray, z: dict[str, np.ndarray],
                  cosine: np.ndarray) -> np.ndarray:
    """The GRAPH_SIGNALS of one query's candidates (`cosine`: their embedding cosines with the query); query -1
    (new text) has dense_rz only."""
    rows = np.asarray(rows, dtype=np.int64)
    return _graph_matrix(graph, g.OneQuery(graph, query, rows, z, cosine), len(rows), query >= 0)


def graph_columns_many(graph: g.LinkGraphs, pairs: g.Pairs) -> np.ndarray:
    """`graph_columns` of many stored queries' candidates at once (graph_signals.ManyQueries)."""
    return _graph_matrix(graph, g.ManyQueries(graph, pairs), len(pairs.rows), True)


def pair_columns(z_of: Callable, facts, graph, view, qs: np.ndarray, cs: np.ndarray) -> list:
    """Every signal of the pairs (qs[i], cs[i]), in ALL_SIGNALS order (the nightly reach, float64): z_of(part)
    gives a score part's z-scores (0.0 when the ranking has no such part); site signals are 0.0 without site
    facts; `view` gives the graph signals what they read of the pairs (batch.learned_pairs.PairView)."""
    out = []
    for signal in FIRST + GRAPHED:
        if signal.source == SCORE:
            out.append(z_of(signal.part))
        elif signal.source == SITE:
            out.append(0.0 if facts is None else (signal.pairs or signal.column)(facts, qs, cs))
        else:
            out.append(signal.column(graph, view))
    return out


def full_run_reason(facts) -> str | None:
    """Why the nightly batch ranks every list again under a learned ranking on this site (a signal reads a corpus
    statistic it does not freeze), or None."""
    if facts is None:
        return None
    return next((x.full_run_reason for x in TABLE if x.full_run is not None and x.full_run(facts)), None)
