"""R4 of incremental.py, narrowed: which kept lists the near-duplicate collapse (rank.linking.collapse_duplicates)
can change. Shared by the default and the learned reach.

The collapse's copies are pairs with a cosine at the `[duplicates] threshold` t, or one title of 3+ words and a
cosine at min(t, TITLE_COPY_COSINE): the copy graph, kept in the lists state (its edges) and brought up to date
each night from the changed articles alone. Its components group the articles the collapse can join into one
slot.

How the graph is found, with no product against every vector (`CopyFinder`). An edge is a pair at cosine
t - EPS or more, or of one title code at min(t, TITLE_COPY_COSINE) - EPS or more (the float slack: an edge too
many only ranks a list again). Each article's copies are read from its own dense candidate pool, the `candidates`
nearest vectors the ranking retrieves anyway (HybridRanker.dense_candidates). With an exact vector index (flat,
up to 150,000 articles) the pool holds every article whose cosine is above its weakest member's (`b`, the pool
bound the nightly reach keeps, within float error): every article outside it has a cosine below b + EPS. So:

* b < t - 2 EPS: every article at t - EPS or more is in the pool: the copies by cosine are the pool's;
* b < min(t, TITLE_COPY_COSINE) - 2 EPS: so are the title copies (same code, cosine at the lower cut);
  else they are read from the article's title group (the rows of one title code: a hash group, sorted once),
  one product with its g members;
* b >= t - 2 EPS (more than `candidates` articles at the threshold: a site with hundreds of copies of one
  page): the pool may not hold them all; that article's row is the one product with every vector.

Two API pages of different names are no copies (rank.linking.other_names): such a pair is no edge.

An edge is found from either end, so the graph is exactly the one an all-pairs product gives. A full run reads
it from every list's candidates as the links step ranks them (`CopyRecord`, fed by relatedlists.link_rows): no
product beyond the ranking's own, a few comparisons per candidate. A night finds the changed articles' edges
(`CopyFinder.edges_of`) with the ranking's dense search before it ranks anything (R4 needs them to plan), and
keeps the edges between unchanged articles. On MDN (14,592 articles) and on the 80,000-article recombined
corpus no pool bound reaches 0.9 (docs/batch.md), so the last case never arises there. Why not only the copies
among each list's last candidates: the rules below need every copy of an article of A_q, also one that was no
candidate of q then (a night can bring an unchanged article below the threshold into the collapse's head as the
pools shift, and a dated one takes a slot), so the graph stays global; each article's own pool gives it for
the same cost.

With an approximate vector index (IVF, above 150,000 articles) a pool is what the index finds, and a pair at the
threshold is an edge when either end's search finds the other. A pair both searches miss is missing from the
graph, and a night can then keep a list whose collapse would change (a full run, which runs the collapse on the
candidates themselves, is never affected). Pairs at cosine 0.98 are nearly the same vector (they lie in the same
or neighbouring IVF lists); the rate measured by scripts/bench_copy_graph.py --ivf is in docs/batch.md. Under a
learned ranking an approximate index means full runs anyway (learned_reach.prepare).

Take a kept list q whose other rules (R2, R3/R5 or L3) hold: every changed article scores below the list's
threshold, and no unchanged article enters or leaves above it, so the articles at or above the threshold are the
same unchanged ones in the same order, less any changed ones. Each list records them (A_q: its candidates whose
score, plus the topic bonus, reaches the threshold, with the float slack). The slots it shows are made by them
(a slot joins copies only, so a component's slots are decided by its own members); an article below the
threshold changes a slot only by joining it as an earlier published copy, which takes the slot's place. A slot
whose first member has no date never changes so (an unknown date is never earlier). Hence a kept list is ranked
again (R4) only when:

* R4a: a changed or removed article of A_q had a copy (its leaving can split a slot or free a copy it held);
* R4b: a dated member of A_q has another dated article in its component (the other may join its slot, from any
  place in the list, and be the earlier published: the old rule's condition, kept for dated copies).

Every other list's collapse is what it was. On a corpus without dates (MDN) R4b never fires, and R4a only for
lists that had a changed copy at or above their threshold; the old rule ranked again every list whose article
or links had a copy or a shared title anywhere.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..rank.linking import TITLE_COPY_COSINE, other_names
from .window_reach import EPS

log = logging.getLogger(__name__)
NO_EDGES = (np.zeros(0, np.int64), np.zeros(0, np.int64))


class CopyFinder:
    """Each article's copies (module docstring) from its dense candidate pool, its title group, or (an article
    with more copies than the pool holds) its row against every vector."""

    def __init__(self, vectors: np.ndarray, codes: np.ndarray | None, threshold: float, search=None,
                 depth: int = 201, names: np.ndarray | None = None):
        self.vectors, self.codes, self.threshold = vectors, codes, threshold
        self.names = names  # API name codes (RuleColumns.api_names): two pages of different names are no copies
        self.search, self.depth = search, depth  # search(queries, depth) -> pool rows (HybridRanker.dense_candidates)
        self.by_cosine = threshold - EPS
        self.by_title = min(threshold, TITLE_COPY_COSINE) - EPS
        self._groups = None
        self.full_rows = 0  # rows that needed a product with every vector (more copies than a pool holds)
        self.group_rows = 0  # rows whose title copies came from their title group

    @classmethod
    def for_job(cls, job) -> "CopyFinder":
        """Over a LinkJob's vectors and title codes, searching with its ranker's dense retrieval."""
        return cls(job.vectors, getattr(job.facts, "title_codes", None), job.policy.duplicates.threshold,
                   lambda queries, depth: job.ranker().dense_candidates(queries, depth),
                   job.policy.ranking.candidates + 1, getattr(job.facts, "api_names", None))

    def group(self, code: int) -> np.ndarray:
        """The rows of one title code (a hash group: the codes sorted once)."""
        if self._groups is None:
            order = np.argsort(self.codes, kind="stable")
            self._groups = (order, self.codes[order])
        order, sorted_codes = self._groups
        return order[np.searchsorted(sorted_codes, code):np.searchsorted(sorted_codes, code, side="right")]

    def copies(self, q: int, rows: np.ndarray, cosines: np.ndarray, bound: float) -> np.ndarray:
        """q's copies, from candidates `rows` (their cosines with q) that hold every article whose cosine with q is
        above `bound` (an exact dense pool's weakest member)."""
        q_vector = self.vectors[q]
        if bound >= self.by_cosine - EPS:  # the pool may miss some: the row against every vector
            self.full_rows += 1
            rows = np.arange(len(self.vectors))
            cosines, bound = self.vectors @ q_vector, -np.inf
        mine = rows != q
        code = -1 if self.codes is None else int(self.codes[q])
        near = mine & (cosines >= self.by_cosine)
        if code >= 0 and bound < self.by_title - EPS:
            near |= mine & (self.codes[rows] == code) & (cosines >= self.by_title)
        found = rows[near]
        if code >= 0 and bound >= self.by_title - EPS:
            self.group_rows += 1
            members = self.group(code)
            members = members[members != q]
            found = np.union1d(found, members[self.vectors[members] @ q_vector >= self.by_title])
        found = np.asarray(found, dtype=np.int64)
        return found[~other_names(self.names, found, q)] if self.names is not None else found

    def edges_of(self, rows: np.ndarray, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """The edges (a, b) with a in `rows`, each row's pool from the dense search."""
        rows = np.asarray(rows, dtype=np.int64)
        a_out, b_out = [], []
        for start in range(0, len(rows), block):
            part = rows[start:start + block]
            pools = self.search(self.vectors[part], min(self.depth, len(self.vectors)))
            for q, pool in zip(part, pools):
                pool = pool[pool >= 0]
                cosines = self.vectors[pool] @ self.vectors[q]
                found = self.copies(int(q), pool, cosines, float(cosines.min()) if len(pool) else np.inf)
                a_out.append(np.full(len(found), q, dtype=np.int64))
                b_out.append(found)
        if not a_out:
            return NO_EDGES
        return np.concatenate(a_out), np.concatenate(b_out)


class CopyRecord:
    """The copy graph of a full run, read from each list's candidates as the links step ranks it (`add`, from
    relatedlists.link_rows), with no product beyond the ranking's own; `edges` gives it (rows no list was ranked
    for, if any, searched then)."""

    def __init__(self, job):
        self.finder = CopyFinder.for_job(job)
        self.seen = np.zeros(len(job.vectors), dtype=bool)
        self.found: dict[int, np.ndarray] = {}  # rows with copies only (most have none)
        self.seconds = 0.0

    def add(self, cand) -> None:
        if cand.query < 0 or cand.pools is None:
            return
        timer = time.perf_counter()
        q = int(cand.query)
        found = self.finder.copies(q, cand.rows, cand.raw["dense"], cand.pools.dense)
        self.seen[q] = True
        if len(found):
            self.found[q] = found
        self.seconds += time.perf_counter() - timer

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Every edge once (a < b)."""
        missing = np.flatnonzero(~self.seen)
        a, b = self.finder.edges_of(missing) if len(missing) else NO_EDGES
        a = np.concatenate([a, *(np.full(len(f), q, dtype=np.int64) for q, f in self.found.items())])
        b = np.concatenate([b, *self.found.values()]).astype(np.int64)
        pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0) if len(a) else \
            np.zeros((0, 2), np.int64)
        log.debug("copy graph: %d pairs from %d lists' candidates in %.2f s (%d rows searched, %d read their title "
                 "group, %d against every vector)", len(pairs), int(self.seen.sum()), self.seconds, len(missing),
                 self.finder.group_rows, self.finder.full_rows)
        return pairs[:, 0], pairs[:, 1]


def record_copies(frozen, cand) -> None:
    """A ranked list's copies, when its run is making the copy graph (a full run: frozen.copies a CopyRecord)."""
    if isinstance(getattr(frozen, "copies", None), CopyRecord):
        frozen.copies.add(cand)


def above_threshold(cand, chosen: list, policy) -> np.ndarray:
    """A_q: the candidates of a list whose score (plus the topic bonus, an upper bound of the adjusted score)
    reaches its threshold, as incremental.thresholds reads it from the stored list."""
    links = policy.links
    ranked = [link.score for link in chosen if not link.pinned and not np.isnan(link.score)]
    if len(chosen) >= links.k:
        thr = min(ranked) if ranked else np.inf
    else:
        thr = -np.inf if links.min_score is None else links.min_score
    bonus = links.bonus_bound
    return np.sort(cand.rows[cand.score.astype(np.float64) + bonus >= thr - EPS]).astype(np.int64)


class CopyReach:
    """The copy graph of the last run and of this one over the current rows and the removed articles (nodes n..),
    and each kept list's A_q; `reached` gives R4 for kept rows. Brings frozen.copies and frozen.above up to date."""

    def __init__(self, job, frozen, state: dict, prev: np.ndarray, same: np.ndarray):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n, n_old = len(prev), len(state["ids"])
        node = np.full(n_old, -1, dtype=np.int64)
        node[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
        removed = np.flatnonzero(node < 0)
        node[removed] = n + np.arange(len(removed))
        total = n + len(removed)
        self.moved = np.ones(total, dtype=bool)
        self.moved[:n] = ~same
        old_a, old_b = node[state["copy_a"]], node[state["copy_b"]]
        self.had_copy = np.bincount(np.concatenate([old_a, old_b]), minlength=total) > 0
        kept = ~self.moved[old_a] & ~self.moved[old_b]
        finder = CopyFinder.for_job(job)
        new_a, new_b = finder.edges_of(np.flatnonzero(~same))
        log.debug("copy graph: %d pairs of %d new or changed articles (%d read their title group, %d against every "
                 "vector)", len(new_a), int((~same).sum()), finder.group_rows, finder.full_rows)
        frozen.copies = (np.concatenate([old_a[kept], new_a]), np.concatenate([old_b[kept], new_b]))
        a, b = np.concatenate([old_a, new_a]), np.concatenate([old_b, new_b])
        graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(total, total))
        _, self.label = connected_components(graph, directed=False)
        self.has_copy = (np.bincount(np.concatenate([a, b]), minlength=total) > 0)[:n]  # before or now
        has_date = np.zeros(total, dtype=bool)  # a removed article counts as undated, as before
        has_date[:n] = ~np.isnan(np.asarray(job.facts.days, dtype=np.float64))
        # an unchanged article with a date (a changed one is in no A_q that stays)
        self.dated = has_date & np.concatenate([same, np.zeros(len(removed), dtype=bool)])
        self.dated_mates = np.bincount(self.label, weights=has_date)
        ptr, members = state["above_ptr"], state["above_rows"]
        self.above: dict[int, np.ndarray] = {}
        for row in np.flatnonzero(same):
            p = prev[row]
            self.above[int(row)] = node[members[ptr[p]:ptr[p + 1]]]
            mine = self.above[int(row)]
            frozen.above[int(row)] = mine[~self.moved[mine]]  # changed ones now score below the threshold

    def reached(self, rest: np.ndarray) -> np.ndarray:
        """R4a or R4b (module docstring) for each kept row in `rest`."""
        out = np.zeros(len(rest), dtype=bool)
        sets = [self.above.get(int(q), np.zeros(0, np.int64)) for q in rest]
        if not sets:
            return out
        owner = np.repeat(np.arange(len(rest)), [len(s) for s in sets])
        members = np.concatenate(sets)
        np.logical_or.at(out, owner[self.moved[members] & self.had_copy[members]], True)  # R4a
        np.logical_or.at(out, owner[self.dated[members] & (self.dated_mates[self.label[members]] >= 2)], True)  # R4b
        return out


def state_arrays(frozen, n: int) -> dict:
    """The copy graph and every list's A_q for lists-state.npz (empty when the collapse is off)."""
    copies = frozen.copies.edges() if isinstance(frozen.copies, CopyRecord) else frozen.copies
    a, b = copies if copies is not None else NO_EDGES
    sets = [frozen.above.get(row, np.zeros(0, np.int64)) for row in range(n)]
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(s) for s in sets])
    rows = np.concatenate(sets).astype(np.int32) if n else np.zeros(0, np.int32)
    return {"copy_a": a.astype(np.int32), "copy_b": b.astype(np.int32), "above_ptr": ptr, "above_rows": rows}


def duplicates(frozen, rest: np.ndarray) -> np.ndarray:
    """R4 for the kept rows `rest` (none when the collapse is off)."""
    if frozen.duplicates is None:
        return np.zeros(len(rest), dtype=bool)
    return frozen.duplicates.reached(rest)
