"""Signals of a (query, candidate) pair from the site's link graphs and the embedding's hubness, all from stored
data: the learned ranking weighs them beside `signals.SIGNALS`.

    graph = LinkGraphs.build(vectors, lexical, lists)     # lists: curated lists by row (query -> related rows)
    X = graph.columns(query, rows, z)                     # one row per candidate, columns GRAPH_SIGNALS
    X = graph.columns_many(pairs)                         # the same for many queries at once (training)

Signals:

* ``names_out`` / ``names_in``: the query's text names the candidate / the candidate's text names the query (the
  mention weights of the lexical index; the hybrid ``mention_z`` mixes both directions)
* ``named_by``: log(1 + articles whose text names the candidate)
* ``dense_rz``: the embedding cosine as a z-score over the *candidate's* row (how far the query stands out among
  the candidate's neighbours), which discounts hubs that are close to everything
* ``curated_in``: log(1 + curated lists that link to the candidate)
* ``curated_back``: the candidate's curated list links to the query
* ``co_curated``: curated lists (each with the article it belongs to) that hold both the query and the candidate
* ``neighbour_lists``: votes for the candidate from the curated lists of the query's 20 strongest candidates,
  each weighted by its mean z-score

The query's own curated list never feeds its own signals (left out of ``curated_in`` and ``co_curated``), so a
signal is the same whether or not the query has a list, in training and in use. Under cross-validation,
`with_lists` keeps only the training folds' lists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..common.blocks import blocks, gram64, spans
from ..store.compiledscores import pair_values
from ..store.compiledtopk import ACTIVE
from ..store.lexical import sparse  # SciPy imported on first use: a query without a learned model never needs it
from .topk import sorted_unique as sorted_rows

NEIGHBOURS = 20  # strongest candidates whose curated lists vote
DENSE_STATS_BLOCK = 65_536  # rows whose cosine statistics `fill_dense_stats` computes at a time


def _row_values(matrix: sparse.csr_matrix, row: int, cols: np.ndarray) -> np.ndarray:
    """matrix[row, cols] as a dense vector, read straight from the CSR arrays (indices sorted)."""
    start, stop = matrix.indptr[row], matrix.indptr[row + 1]
    found = matrix.indices[start:stop]
    if not len(found):
        return np.zeros(len(cols), dtype=np.float32)
    at = np.minimum(np.searchsorted(found, cols), len(found) - 1)
    return np.where(found[at] == cols, matrix.data[start:stop][at], 0.0).astype(np.float32)


def _votes(matrix: sparse.csr_matrix, voters: np.ndarray, weights: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """sum over voters v of weights[v] * matrix[v, cols], from the CSR arrays."""
    starts, stops = matrix.indptr[voters], matrix.indptr[voters + 1]
    lengths = stops - starts
    if not lengths.sum():
        return np.zeros(len(cols), dtype=np.float32)
    picked = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
    targets = matrix.indices[picked]
    values = matrix.data[picked] * np.repeat(weights, lengths)
    order = np.argsort(targets, kind="stable")
    targets, values = targets[order], values[order]
    unique, first = np.unique(targets, return_index=True)
    sums = np.add.reduceat(values, first)
    at = np.minimum(np.searchsorted(unique, cols), len(unique) - 1)
    return np.where(unique[at] == cols, sums[at], 0.0).astype(np.float32)


def _sample(matrix: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[i], cols[i]] for every i, in one vectorised lookup (SciPy's CSR sampling)."""
    if not len(rows):
        return np.zeros(0, dtype=np.float32)
    return np.asarray(matrix[rows, cols], dtype=np.float32).ravel()


def dense_rz(cosine: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """dense_rz: each candidate's cosine as a z-score over the candidate's own row (stats: mean, deviation)."""
    return (cosine - stats[:, 0]) / np.where(stats[:, 1] > 1e-12, stats[:, 1], 1.0)


def _strength(z: dict[str, np.ndarray], size: int) -> np.ndarray:
    """How strongly each candidate stands out for the query (the mean of its dense and lexical z, at least 0):
    the weight of its curated list's votes in `neighbour_lists`."""
    parts = [z[p] for p in ("dense", "lexical") if p in z]
    return np.maximum(np.mean(parts, axis=0), 0.0) if parts else np.zeros(size)


@dataclass
class Pairs:
    """Many queries' candidates, concatenated: each pair's query row, candidate row, cosine and strength
    (`_strength`), and where each query's block starts. Built once; reused by every fold's columns."""

    query: np.ndarray
    rows: np.ndarray
    cosine: np.ndarray
    strength: np.ndarray
    starts: np.ndarray  # len(queries) + 1 offsets

    @classmethod
    def of(cls, cands: dict, queries) -> "Pairs":
        """From Candidates by query (each with .rows, .z and .raw["dense"]), in the order of `queries`."""
        blocks = [cands[q] for q in queries]
        sizes = np.array([len(c.rows) for c in blocks], dtype=np.int64)
        return cls(query=np.repeat(np.asarray(list(queries), dtype=np.int64), sizes),
                   rows=np.concatenate([np.asarray(c.rows, np.int64) for c in blocks]) if blocks else
                   np.zeros(0, np.int64),
                   cosine=np.concatenate([c.raw["dense"] for c in blocks]) if blocks else np.zeros(0, np.float32),
                   strength=np.concatenate([_strength(c.z, len(c.rows)) for c in blocks]) if blocks else
                   np.zeros(0),
                   starts=np.concatenate([[0], np.cumsum(sizes)]))


def block_pairs(cands: list) -> Pairs:
    """Pairs of a list of Candidates, in its order, each block's query its own `.query` (a batch's block of stored
    queries: block_signals)."""
    pairs = Pairs.of(dict(enumerate(cands)), range(len(cands)))
    pairs.query = np.repeat(np.array([int(c.query) for c in cands], dtype=np.int64), np.diff(pairs.starts))
    return pairs


def _lists_matrix(lists: dict[int, list[int]], n: int) -> sparse.csr_matrix:
    rows = [q for q, related in lists.items() for _ in related]
    cols = [r for related in lists.values() for r in related]
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))


def _sorted(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    matrix.sort_indices()
    return matrix


@dataclass
class LinkGraphs:
    """The link graphs in row order: mentions (a names b) and curated lists (a links b), with their transposes,
    in-degrees and the co-curation counts; each article's embedding row mean and deviation, filled as needed."""

    vectors: np.ndarray
    mean_vector: np.ndarray
    second_moment: np.ndarray
    mentions: sparse.csr_matrix
    mentions_t: sparse.csr_matrix
    named_by: np.ndarray
    lists: sparse.csr_matrix
    lists_t: sparse.csr_matrix
    in_links: np.ndarray
    co: sparse.csr_matrix
    dense_stats: np.ndarray  # n x 2 (mean, std) of each article's cosines with the corpus; NaN until needed

    @classmethod
    def build(cls, vectors: np.ndarray, lexical, lists: dict[int, list[int]], moments=None,
              turned: bool = True) -> "LinkGraphs":
        """moments: (mean vector, second moment) of the vectors when already known (a HybridRanker has them).
        The mentions are the lexical index's matrix itself (not a copy); turned=False: no transposed copy of it
        (mentions_t None: the build writes it by blocks, learneddata)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(vectors)
        if moments is None:  # VᵀV by blocks of rows (at 1M articles a float64 copy is 3 GB)
            moments = (vectors.mean(axis=0) if n else np.zeros(vectors.shape[1], np.float32),
                       (gram64(vectors, one_copy=True) / max(1, n)).astype(np.float32))
        if lexical is not None and lexical.count == n:
            mentions = _sorted(lexical.mentions.tocsr().astype(np.float32, copy=False))
        else:
            mentions = sparse.csr_matrix((n, n), dtype=np.float32)
        facts = cls(vectors=vectors, mean_vector=moments[0], second_moment=moments[1], mentions=mentions,
                    mentions_t=_sorted(mentions.T.tocsr()) if turned else None,
                    named_by=np.log1p(np.bincount(mentions.indices, minlength=n)).astype(np.float32),
                    lists=None, lists_t=None, in_links=None, co=None,
                    dense_stats=np.full((n, 2), np.nan, dtype=np.float32))
        return facts.with_lists(lists)

    def with_lists(self, lists: dict[int, list[int]]) -> "LinkGraphs":
        """The same facts with other curated lists (the training folds' under cross-validation)."""
        n = len(self.vectors)
        links = _lists_matrix(lists, n)
        owners = sparse.csr_matrix((np.ones(len(lists), np.float32), (np.arange(len(lists)), list(lists))),
                                   shape=(len(lists), n))
        members = ((links[list(lists)] if lists else sparse.csr_matrix((0, n))) + owners).tocsr()
        members.data[:] = 1.0
        co = (members.T @ members).tocsr()
        co = (co - sparse.diags(co.diagonal())).tocsr()
        co.eliminate_zeros()
        for matrix in (links, co):
            matrix.sort_indices()
        return replace(self, lists=links, lists_t=_sorted(links.T.tocsr()), co=co,
                       in_links=np.asarray(links.sum(axis=0), dtype=np.float32).ravel())

    def dense_stats_of(self, rows: np.ndarray) -> np.ndarray:
        """`dense_stats` of these rows, each computed on first use (all rows at once when most are wanted)."""
        missing = rows[np.isnan(self.dense_stats[rows, 0])]
        if len(missing) > len(self.vectors) // 4:  # most rows wanted (a small corpus): all of them at once
            missing = np.flatnonzero(np.isnan(self.dense_stats[:, 0]))
        if len(missing):
            self.dense_stats[missing, 0], self.dense_stats[missing, 1] = self.cosine_stats(self.vectors[missing])
        return self.dense_stats[rows]

    def fill_dense_stats(self, rows_of=None, block: int | None = None) -> None:
        """Every article's `dense_stats`, `block` (default DENSE_STATS_BLOCK) rows at a time (all at once when a
        block holds more than a quarter of them, as dense_stats_of): what the build stores (rank.learneddata) and
        what a batch that ranks every list reads of nearly every row, computed in products of many rows instead of
        each list's few hundred candidates (at 1M articles, about 3 s). rows_of: (start, stop) -> those rows'
        vectors (default: the graph's own)."""
        n, block = len(self.dense_stats), block or DENSE_STATS_BLOCK
        rows_of = rows_of or (lambda start, stop: self.vectors[start:stop])
        for start, stop in [(0, n)] if min(n, block) > n // 4 else blocks(n, block):
            self.dense_stats[start:stop, 0], self.dense_stats[start:stop, 1] = self.cosine_stats(
                np.ascontiguousarray(rows_of(start, stop), dtype=np.float32))

    def cosine_stats(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, deviation) of the cosines of each of these vectors with the corpus, from its moments."""
        mean = v @ self.mean_vector
        second = np.einsum("qd,qd->q", v @ self.second_moment, v)
        return mean, np.sqrt(np.maximum(second - mean ** 2, 0.0))


# --- the graph signals' views: what a signal reads of the pairs it is computed for ------------------------


class OneQuery:
    """One query's candidates (query -1: new text, which has `dense_rz` only). `cosine`: their embedding cosines
    with the query; `z`: their z-scores (the strength of their votes)."""

    def __init__(self, graph: LinkGraphs, query: int, rows: np.ndarray, z: dict, cosine: np.ndarray):
        self.graph, self.query, self.rows, self.z, self.cosine = graph, query, rows, z, cosine

    def look(self, matrix) -> np.ndarray:
        """matrix[query, candidate] of each candidate."""
        return _row_values(matrix, self.query, self.rows)

    def dense_stats(self) -> np.ndarray:
        return self.graph.dense_stats_of(self.rows)

    def votes(self) -> np.ndarray:
        strength = _strength(self.z, len(self.rows))
        top = np.argsort(-strength, kind="stable")[:NEIGHBOURS]
        return _votes(self.graph.lists, self.rows[top], strength[top].astype(np.float32), self.rows)


class QueryBlock:
    """A block of stored queries' candidates in use (every query row >= 0; `pairs`: block_pairs of their Candidates):
    the values OneQuery gives query by query, bit for bit, in fewer calls (the lookups of every pair at once where
    the process has the compiled loop, store.compiledscores._pair_values; the votes query by query, in
    OneQuery's order of addition)."""

    def __init__(self, graph: LinkGraphs, pairs: Pairs):
        self.graph, self.pairs, self.rows, self.cosine = graph, pairs, pairs.rows, pairs.cosine

    def look(self, matrix) -> np.ndarray:
        kernel = ACTIVE["pair_values"]
        if kernel is not None and all(hasattr(matrix, name) for name in ("indptr", "indices", "data")):
            return pair_values(kernel, (np.asarray(matrix.indptr), np.asarray(matrix.indices),
                                        np.asarray(matrix.data)), self.pairs.query, self.rows)
        out = np.zeros(len(self.rows), dtype=np.float32)
        for q, a, b in spans(self.pairs.query, self.pairs.starts):
            out[a:b] = _row_values(matrix, q, self.rows[a:b])
        return out

    def dense_stats(self) -> np.ndarray:
        stats = self.graph.dense_stats
        if not np.isnan(stats[self.rows, 0]).any():  # every candidate's computed (the batch fills them first)
            return stats[self.rows]
        out = np.empty((len(self.rows), 2), dtype=stats.dtype)  # computed as a query at a time computes them
        for _, a, b in spans(self.pairs.query, self.pairs.starts):
            out[a:b] = self.graph.dense_stats_of(self.rows[a:b])
        return out

    def votes(self) -> np.ndarray:
        out = np.zeros(len(self.rows), dtype=np.float32)
        lists, strength = self.graph.lists, self.pairs.strength
        for _, a, b in spans(self.pairs.query, self.pairs.starts):
            rows = self.rows[a:b]
            top = np.argsort(-strength[a:b], kind="stable")[:NEIGHBOURS]
            out[a:b] = _votes(lists, rows[top], strength[a:b][top].astype(np.float32), rows)
        return out


class ManyQueries:
    """Many stored queries' candidates at once (every query row >= 0, training): sparse lookups and one sparse
    product over all the pairs instead of a dozen small calls per query. The same values as OneQuery, query by
    query (`neighbour_lists` summed in another order: equal to float32 rounding)."""

    def __init__(self, graph: LinkGraphs, pairs: Pairs):
        self.graph, self.pairs, self.rows, self.cosine = graph, pairs, pairs.rows, pairs.cosine

    def look(self, matrix) -> np.ndarray:
        return _sample(matrix, self.pairs.query, self.rows)

    def dense_stats(self) -> np.ndarray:
        self.graph.dense_stats_of(sorted_rows(self.rows))  # fills each candidate's statistics once
        return self.graph.dense_stats[self.rows]

    def votes(self) -> np.ndarray:
        """Each query's NEIGHBOURS strongest candidates vote with their curated lists."""
        pairs, rows = self.pairs, self.rows
        voter_at, voter_block = [], []
        for b in range(len(pairs.starts) - 1):
            start, stop = pairs.starts[b], pairs.starts[b + 1]
            top = np.argsort(-pairs.strength[start:stop], kind="stable")[:NEIGHBOURS]
            voter_at.append(start + top)
            voter_block.append(np.full(len(top), b))
        voter_at = np.concatenate(voter_at)
        voter_block = np.concatenate(voter_block)
        voter_weight = pairs.strength[voter_at].astype(np.float32)
        weights = sparse.csr_matrix((voter_weight, (voter_block, rows[voter_at])),
                                    shape=(len(pairs.starts) - 1, len(self.graph.vectors)))
        votes = (weights @ self.graph.lists).tocsr()
        votes.sort_indices()
        block_of = np.repeat(np.arange(len(pairs.starts) - 1), np.diff(pairs.starts))
        return _sample(votes, block_of, rows)


# --- each graph signal: name(graph, view) for the view's pairs (recommender.rank.signaltable names them) -------


def names_out(graph: LinkGraphs, view) -> np.ndarray:
    return view.look(graph.mentions)


def names_in(graph: LinkGraphs, view) -> np.ndarray:
    return view.look(graph.mentions_t)


def named_by(graph: LinkGraphs, view) -> np.ndarray:
    return graph.named_by[view.rows]


def dense_rz_of(graph: LinkGraphs, view) -> np.ndarray:
    return dense_rz(view.cosine, view.dense_stats())


def curated_in(graph: LinkGraphs, view) -> np.ndarray:
    return np.log1p(np.maximum(graph.in_links[view.rows] - view.look(graph.lists), 0))


def curated_back(graph: LinkGraphs, view) -> np.ndarray:
    return view.look(graph.lists_t)


def co_curated(graph: LinkGraphs, view) -> np.ndarray:
    return np.maximum(view.look(graph.co) - view.look(graph.lists), 0)


def neighbour_lists(graph: LinkGraphs, view) -> np.ndarray:
    return view.votes()
