"""Which lists a change can reach when a learned ranking (recommender.rank.learned) scores them: the learned
counterpart of R3 and R5 in `incremental.py`.

The learned score is linear in standardised signals. With the corpus statistics frozen (the embedding moments,
also for `dense_rz`; each query's lexical and mention row statistics; the IDF and name weights), every signal of
a pair (q, c) depends on q and c alone, except these, which this module turns into per-article or per-list facts:

* ``named_by``, ``curated_in``, ``curated_back``, ``co_curated``: the candidate's (or query's) facts in the
  mention and curated-list graphs. `graph_signatures` folds them into each article's signature, so an article
  whose graph facts changed counts as changed (R1: its own list; R2: the lists showing it; L3 below);
* ``neighbour_lists``: votes from the curated lists of the query's 20 strongest candidates (strength: the mean
  of the dense and lexical z-scores, at least 0). Each ranked list records its voters and the strength of its
  20th candidate (`recording`); a list whose voter changed, left, or could be outranked is ranked again (LN).

With those fixed, a list not ranked again by R1, R2 or R4 changes only when:

* L3: a new or changed article c can be a candidate of q (dense or lexical value at the pool boundary, or a
  mention either way) and its exact learned score in q (computed for every kept list, vectorised: O(changed x n))
  reaches q's threshold, or c becomes one of q's voters;
* L5: an unchanged article enters or leaves q's pools (pushed out by what entered, or let in by what left). It
  lies below both pool boundaries (raised by what entered), has no mention either way, and its learned score is
  at most the sum over signals of each weight's largest value on the signal's range for q: dense and lexical
  values up to the boundaries, `dense_rz` up to its largest value over all candidates at that cosine, graph
  counts up to their corpus (or row) maxima. When that bound reaches the threshold, or the bound on its strength
  reaches the 20th voter's strength, the list is ranked again.

Tags: the tag IDF (and which tags are rare enough to pool on) follows the corpus size and is not frozen, so a
site with tags gets a full run under a learned ranking (`prepare`). An approximate vector index makes the dense
pool inexact: every new or changed article is then taken to be a possible candidate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np

from ..rank.graph_signals import NEIGHBOURS
from .incremental import EPS, thresholds

LEARNED_EPS = 1e-3  # float slack of the learned reach tests (float32 signals standardised and weighted)


def model_digest(model) -> str | None:
    """A digest of a learned model's content (None for the default ranking)."""
    if model is None:
        return None
    from dataclasses import asdict

    return hashlib.sha256(json.dumps(asdict(model), sort_keys=True).encode()).hexdigest()


def graph_signatures(graph, ids: list[str], signatures: list[str]) -> list[str]:
    """Each article's signature with its graph facts folded in (ids, not rows: a removal renumbers rows)."""
    def ids_of(matrix, row):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        return sorted(zip((ids[c] for c in matrix.indices[start:stop]), matrix.data[start:stop].tolist()))

    out = []
    for row, sig in enumerate(signatures):
        facts = [sig, float(graph.named_by[row]), float(graph.in_links[row]), ids_of(graph.lists, row),
                 ids_of(graph.lists_t, row), ids_of(graph.co, row)]
        out.append(hashlib.sha1(json.dumps(facts).encode()).hexdigest())
    return out


def recording(rescorer, frozen):
    """The rescorer, also recording each query's voters (the candidates whose curated lists vote in
    `neighbour_lists`, positive strength only) and the strength of its 20th strongest candidate."""

    def rescore(cand):
        q = int(cand.query)
        if q >= 0:
            n = len(frozen.ids)
            voters = frozen.bounds.setdefault("voters", np.full((n, NEIGHBOURS), -1, dtype=np.int64))
            floor = frozen.bounds.setdefault("voter_floor", np.full(n, np.nan))
            strength = voter_strength(cand.z, len(cand.rows))
            top = np.argsort(-strength, kind="stable")[:NEIGHBOURS]
            chosen = cand.rows[top][strength[top] > 0]
            voters[q] = -1
            voters[q, :len(chosen)] = chosen
            floor[q] = float(strength[top[-1]]) if len(top) == NEIGHBOURS else 0.0
        return rescorer(cand)

    return rescore


def voter_strength(z: dict, count: int) -> np.ndarray:
    """graph_signals.GraphFacts.columns' strength of each candidate."""
    parts = [z[p] for p in ("dense", "lexical") if p in z]
    return np.maximum(np.mean(parts, axis=0), 0.0) if parts else np.zeros(count)


def prepare(job, frozen, state: dict, prev: np.ndarray, same: np.ndarray) -> str | None:
    """Before an incremental plan: the reason for a full run instead, or None after freezing the graph's
    embedding moments (dense_rz) and carrying the kept lists' voters over (renumbered)."""
    facts = job.site_facts
    if facts is not None and getattr(facts.tags, "nnz", 0):
        return "learned ranking with tags (the tag IDF is not frozen)"
    if "bound_voters" not in state:
        return "no voters recorded for the learned ranking"
    n = len(prev)
    job.graph = replace(job.graph, mean_vector=frozen.mean_vector, second_moment=frozen.second_moment,
                        dense_stats=np.full((n, 2), np.nan, dtype=np.float32))
    old = state["bound_voters"]
    renumber = np.full(len(old) + 1, -1, dtype=np.int64)  # index -1 -> padding
    renumber[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
    voters = np.full((n, NEIGHBOURS), -1, dtype=np.int64)
    floor = np.full(n, np.nan)
    kept = np.flatnonzero(same)
    carried = old[prev[kept]]
    voters[kept] = np.where(carried >= 0, renumber[carried], -1)
    lost = ((carried >= 0) & (voters[kept] < 0)).any(axis=1)  # a voter was removed: unknown, ranked again
    floor[kept] = np.where(lost, np.nan, state["bound_voter_floor"][prev[kept]])
    frozen.bounds["voters"], frozen.bounds["voter_floor"] = voters, floor
    return None


def reach(job, frozen, state: dict, prev: np.ndarray, stored: np.ndarray, moved: np.ndarray, reasons: dict,
          recompute: np.ndarray, block: int = 64) -> np.ndarray:
    """L3, LN, L5 and R4 for the rows not already recomputed; raises their pool bounds by what entered."""
    policy, ranker, model, graph, facts = job.policy, job.ranker(), job.learned, job.graph, job.site_facts
    rest = np.flatnonzero(~recompute)
    out = np.zeros(len(prev), dtype=bool)
    if not len(rest):
        return out
    thr = thresholds(state, prev[rest], policy.links.k, policy.links.min_score)
    a = np.asarray(model.coef, np.float64) / np.asarray(model.scale, np.float64)
    base = float(model.intercept) - float(a @ np.asarray(model.mean, np.float64))
    bonus = policy.links.topic_bonus if policy.links.same_topic == "prefer" else 0.0
    used = {"lexical": ranker._uses("lexical"), "mention": ranker._uses("mention")}
    q = _QueryStats(job, frozen, rest, used)
    voters, floor = frozen.bounds["voters"][rest], frozen.bounds["voter_floor"][rest]
    weights = q.strength_of(voters)  # rest x NEIGHBOURS, 0 for padding
    bd, bl = frozen.bounds["dense"][rest], frozen.bounds["lexical"][rest]
    entered = {"dense": bd.copy(), "lexical": bl.copy()}
    closest = frozen.bounds["closest"][rest].copy()
    l3, ln = np.zeros(len(rest), dtype=bool), np.isnan(floor) | (np.isin(voters, np.flatnonzero(moved))).any(1)
    cols = np.flatnonzero(moved)
    lex, tfidf_rest = job.lexical, job.lexical.tfidf[rest] if used["lexical"] else None
    for start in range(0, len(cols), block):
        c = cols[start:start + block]
        dense = q.vectors @ job.vectors[c].T
        lexical = (tfidf_rest @ lex.tfidf[c].T).toarray() if used["lexical"] else None
        named = _dense(graph.mentions, rest, c)
        naming = _dense(graph.mentions, c, rest).T
        z = {"dense": q.z("dense", dense)}
        if used["lexical"]:
            z["lexical"] = q.z("lexical", lexical)
        if used["mention"]:
            z["mention"] = q.z("mention", named + naming)
        score = np.full(dense.shape, base)
        for j, name in enumerate(("dense", "lexical", "mention")):
            if name in z:
                score += a[j] * z[name]
        score += _site_part(facts, a, rest, c)
        score += _graph_part(graph, a, rest, c, dense, named, naming, voters, weights)
        mine = rest[:, None] == c[None, :]
        possible = (dense >= bd[:, None] - EPS) | np.isnan(bd)[:, None] | ((named + naming) > 0)
        if lexical is not None:
            possible |= lexical >= bl[:, None] - EPS
        if job.ann is not None:
            possible[:] = True
        possible &= ~mine
        l3 |= (possible & (score + bonus >= thr[:, None] - LEARNED_EPS)).any(axis=1)
        strength = voter_strength(z, 0)
        ln |= (possible & (strength > 0) & (strength >= floor[:, None] - LEARNED_EPS)).any(axis=1)
        masked = np.where(mine, -np.inf, dense)
        entered["dense"] = np.fmax(entered["dense"], masked.max(axis=1))
        closest = np.fmax(closest, masked.max(axis=1))
        if lexical is not None:
            entered["lexical"] = np.fmax(entered["lexical"], np.where(mine, -np.inf, lexical).max(axis=1))
    bound, strength_bound = outsider_bound(job, q, a, base, entered, voters, weights, used)
    unknown = np.isnan(thr) | np.isnan(bound) | np.isnan(entered["dense"])
    l5 = (bound + bonus >= thr - LEARNED_EPS) | ((strength_bound > 0) & (strength_bound >= floor - LEARNED_EPS))
    l5 |= unknown
    r4 = _duplicates(job, frozen, prev, stored, rest, closest)
    for name, hit in (("a changed article reaches its threshold (learned)", l3),
                      ("its voters changed (learned neighbour_lists)", ln & ~l3),
                      ("near-duplicates", r4 & ~l3 & ~ln),
                      ("an outsider could reach its threshold (learned)", l5 & ~l3 & ~ln & ~r4)):
        reasons[name] = int(hit.sum())
    out[rest] = l3 | ln | r4 | l5
    keep = ~out[rest]
    for b in ("dense", "lexical"):
        frozen.bounds[b][rest[keep]] = entered[b][keep]
    frozen.bounds["closest"][rest[keep]] = closest[keep]
    return out


def _duplicates(job, frozen, prev, stored, rest, closest) -> np.ndarray:
    """R4 of incremental.py: the article, or one of its links, has a copy (cosine at the collapse threshold, or a
    shared title of 3+ words)."""
    t = job.policy.duplicates.threshold
    if t >= 1.0:
        return np.zeros(len(rest), dtype=bool)
    copies = np.zeros(len(prev) + 1, dtype=bool)  # current numbering; index -1 -> padding
    known = frozen.bounds["closest"].copy()
    known[rest] = closest
    copies[:-1] = np.nan_to_num(known, nan=np.inf) >= t - EPS  # unknown counts as a copy
    codes = getattr(job.facts, "title_codes", None)
    if codes is not None and len(codes) == len(prev):
        counts = np.bincount(codes[codes >= 0], minlength=int(codes.max(initial=-1)) + 1)
        copies[:-1] |= (codes >= 0) & (counts[np.maximum(codes, 0)] > 1)
    renumber = np.full(int(max(prev.max(initial=-1), stored.max(initial=-1))) + 2, -1, dtype=np.int64)
    renumber[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
    return copies[rest] | copies[renumber[stored[rest]]].any(axis=1)


class _QueryStats:
    """The frozen z-score statistics of the kept rows (as HybridRanker and Frozen.row_stats give them)."""

    def __init__(self, job, frozen, rest: np.ndarray, used: dict):
        self.rest, self.job = rest, job
        self.vectors = job.vectors[rest]
        mean = np.einsum("qd,d->q", self.vectors, frozen.mean_vector)
        second = np.einsum("qd,de,qe->q", self.vectors, frozen.second_moment, self.vectors)
        self.stats = {"dense": (mean, np.sqrt(np.maximum(second - mean ** 2, 0.0)))}
        for part in ("lexical", "mention"):
            if used[part]:
                table = frozen.stats[part][rest]
                self.stats[part] = (table[:, 0], table[:, 1])

    def z(self, part: str, raw: np.ndarray) -> np.ndarray:
        mean, std = self.stats[part]
        std = np.where(std > 1e-12, std, 1.0)
        if np.ndim(raw) == 1:
            return (raw - mean) / std
        return (raw - mean[:, None]) / std[:, None]

    def strength_of(self, voters: np.ndarray) -> np.ndarray:
        """The strength (voter_strength) of each (kept row, voter) pair; 0 for padding."""
        job, valid = self.job, voters >= 0
        safe = np.where(valid, voters, 0)
        dense = np.einsum("qd,qjd->qj", self.vectors, job.vectors[safe])
        parts = [self.z("dense", dense)]
        if "lexical" in self.stats:
            tfidf = job.lexical.tfidf
            pairs = tfidf[np.repeat(self.rest, safe.shape[1])].multiply(tfidf[safe.ravel()])
            lexical = np.asarray(pairs.sum(axis=1)).reshape(safe.shape)
            parts.append(self.z("lexical", lexical))
        return np.where(valid, np.maximum(np.mean(parts, axis=0), 0.0), 0.0)


def _dense(matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.asarray(matrix[rows][:, cols].todense(), dtype=np.float64)


def _site_part(facts, a: np.ndarray, rest: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sum of weight x signal over signals.SIGNALS[3:] for every (kept row, column) pair: pair_signals from the
    column's side (every one is symmetric but candidate_older, which is flipped)."""
    from ..rank.signals import pair_signals

    out = np.zeros((len(rest), len(cols)))
    if facts is None:
        return out
    for j, c in enumerate(cols):
        X = pair_signals(int(c), rest, {}, facts).astype(np.float64)
        cday, qdays = facts.days[c], facts.days[rest]
        X[:, 8] = (~np.isnan(qdays)) & (not np.isnan(cday)) & (cday < np.nan_to_num(qdays))
        out[:, j] = X[:, 3:] @ a[3:len(X[0])]
    return out


def _graph_part(graph, a: np.ndarray, rest, cols, dense, named, naming, voters, weights) -> np.ndarray:
    """Sum of weight x signal over graph_signals.GRAPH_SIGNALS for every (kept row, column) pair."""
    from ..rank.learned import SIGNALS

    g = a[len(SIGNALS):]
    stats = graph._dense_stats(cols)
    own = _dense(graph.lists, rest, cols)
    parts = [named, naming, np.broadcast_to(graph.named_by[cols][None, :], dense.shape),
             (dense - stats[None, :, 0]) / np.where(stats[:, 1] > 1e-12, stats[:, 1], 1.0)[None, :],
             np.log1p(np.maximum(graph.in_links[cols][None, :] - own, 0)), _dense(graph.lists, cols, rest).T,
             np.maximum(_dense(graph.co, rest, cols) - own, 0)]
    listed = _dense(graph.lists, np.arange(graph.lists.shape[0]), cols)  # n x cols
    safe = np.where(voters >= 0, voters, 0)
    parts.append(np.einsum("qj,qjc->qc", weights, listed[safe]))
    return sum(w * p for w, p in zip(g, parts))


def outsider_bound(job, q: _QueryStats, a: np.ndarray, base: float, entered: dict, voters, weights, used):
    """L5: per kept row, an upper bound of the learned score of an article below both pool boundaries with no
    mention either way, and of its strength."""
    from ..rank.learned import SIGNALS

    facts, graph, rest = job.site_facts, job.graph, q.rest
    n = len(rest)
    lo, hi = {}, {}

    def span(j, low, high):
        lo[j], hi[j] = np.broadcast_to(np.asarray(low, np.float64), n), np.broadcast_to(np.asarray(high, np.float64), n)

    bd, bl = entered["dense"], entered["lexical"]
    span(0, q.z("dense", np.full(n, -1.0)), q.z("dense", bd))
    if used["lexical"]:
        span(1, q.z("lexical", np.zeros(n)), q.z("lexical", np.where(np.isfinite(bl), bl, 0.0)))
    if used["mention"]:
        span(2, q.z("mention", np.zeros(n)), q.z("mention", np.zeros(n)))
    if facts is not None:
        has = lambda m: np.diff(np.asarray(m[rest].indptr)) > 0  # noqa: E731
        dated = ~np.isnan(facts.days[rest])
        days = facts.days[~np.isnan(facts.days)]
        gap = np.maximum(np.abs(np.nan_to_num(facts.days[rest]) - (days.min() if len(days) else 0)),
                         np.abs(np.nan_to_num(facts.days[rest]) - (days.max() if len(days) else 0)))
        span(3, 0, facts.title_len[rest] > 0)
        tag_sum = np.asarray(facts.tags[rest] @ np.asarray(facts.tag_idf, np.float64)).ravel()
        span(4, 0, tag_sum)
        span(5, 0, has(facts.authors))
        span(6, 0, np.where(dated, np.log1p(gap), 0.0))
        span(7, 0, dated)
        span(8, 0, dated)
        span(9, 0, facts.sources[rest] >= 0)
        span(10, 0, facts.path_len[rest] > 0)
        span(11, 0, facts.path_len[rest] > 0)
        span(12, 0, facts.page_types[rest] >= 0)
    g = len(SIGNALS)
    rows_max = lambda m: np.asarray(m[rest].max(axis=1).todense()).ravel()  # noqa: E731
    if not used["mention"]:  # no mention pool: an outsider may name the query or be named by it
        span(g, 0, rows_max(graph.mentions))
        span(g + 1, 0, rows_max(graph.mentions_t))
    span(g + 2, 0, float(graph.named_by.max(initial=0.0)))
    stats = graph._dense_stats(np.arange(len(graph.vectors)))
    s = np.where(stats[:, 1] > 1e-12, stats[:, 1], 1.0).astype(np.float64)
    m = stats[:, 0].astype(np.float64)
    high = np.empty(n)
    for start in range(0, n, 256):  # max over candidates c of (cosine - m_c) / s_c with cosine <= bound
        part = bd[start:start + 256]
        high[start:start + 256] = ((part[:, None] - m[None, :]) / s[None, :]).max(axis=1)
    span(g + 3, float(((-1.0 - m) / s).min()), high)
    span(g + 4, 0, np.log1p(float(graph.in_links.max(initial=0.0))))
    span(g + 5, 0, np.diff(graph.lists_t.indptr)[rest] > 0)
    span(g + 6, 0, rows_max(graph.co))
    from scipy import sparse

    valid = voters >= 0
    votes = sparse.csr_matrix((weights[valid], (np.nonzero(valid)[0], voters[valid])),
                              shape=(n, graph.lists.shape[0])) @ graph.lists
    span(g + 7, 0, np.asarray(votes.max(axis=1).todense()).ravel() if votes.shape[1] else np.zeros(n))
    bound = np.full(n, base)
    for j in lo:
        bound += np.maximum(a[j] * lo[j], a[j] * hi[j])
    parts = [hi[0]] + ([hi[1]] if used["lexical"] else [])
    return bound, np.maximum(np.mean(parts, axis=0), 0.0)
