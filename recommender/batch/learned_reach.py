"""Which lists a change can reach when a learned ranking (recommender.rank.learned) scores them: the learned
counterpart of R3 and R5 in `incremental.py` (R1 and R4 are shared; a list that R2 would rank again is made
again from its recorded margin when that is sure: margin_follow).

The learned score is linear in standardised signals. With the corpus statistics frozen (the embedding moments,
also for `dense_rz`; each query's lexical and mention row statistics; the IDF and name weights), every signal of
a pair (q, c) depends on q and c alone, except these, which become per-article or per-list facts:

* ``named_by``, ``curated_in``, ``curated_back``, ``co_curated``: facts of the candidate (or query) in the mention
  and curated-list graphs. `graph_signatures` folds them into each article's signature, so an article whose
  graph facts changed counts as changed (R1: its own list; R2: the lists showing it; L3 below);
* ``neighbour_lists``: votes from the curated lists of the query's 20 strongest candidates (strength: the mean of
  the dense and lexical z-scores, at least 0). Each ranked list records its 30 strongest candidates and an
  upper bound of the others' strength (`recording`).

The learned score has no upper bound outside the pools (free signals), so instead of R5's bound the pools of
every kept list are found again exactly, from what each list stored and the changed articles alone: the dense
and lexical pools from the stored pools and the changed articles' values (pool_follow.TopSide; the list's own row
only when an outsider may come in), the window pool of the two-stage ranking from the stored window pool and
retrieval (window_batch.WindowSide: one product of the kept lists' windows with the changed articles' windows, no
full window row), or the list is ranked again when that cannot be told (LW). Before that, a kept list
whose pools provably keep their members takes a fast path (steady_pools: the argument is in its docstring): only
its pairs with its changed members are scored, under the same L3 and LN tests (`settle`). A kept list is then
ranked again only when:

* L3: a new or changed article in its new pools, or an unchanged article entering or leaving them, has an exact
  learned score (computed for those pairs only, vectorised: learned_pairs) that reaches the list's threshold;
* LW: its new window pool cannot be told from what it stored (window_reach.follow);
* LN: the curated-list owners among its 20 strongest candidates (with a positive strength) change, or one of
  them changed, or the new top 20 cannot be told from the record (ties, or too many left).

Tags: the tag IDF (and which tags are rare enough to pool on) follows the corpus size and is not frozen, so a site
with tags gets a full run under a learned ranking (`prepare`); so does an approximate vector index (the dense pool
is then not the exact top of the row).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

import numpy as np

from ..rank.candidates import mention_depth
from ..rank.graph_signals import NEIGHBOURS
from ..rank.signaltable import full_run_reason
from .learned_pairs import QueryStats, as_csr, pair_scores, voter_strength
from .pool_follow import TopSide, mention_membership
from . import margin_follow
from .copy_reach import duplicates
from .window_batch import WindowSide
from .steady_pools import Steady

RECORDED = NEIGHBOURS + 10  # strongest candidates recorded per list
LEARNED_EPS = 1e-3  # float slack of the learned score tests (float32 signals standardised and weighted)
STRENGTH_EPS = 1e-5  # float slack of the strength comparisons (a mean of two float32 z-scores)
POOL_EPS = 1e-5  # float slack of the pool membership tests (the same products, blocked differently)


def model_digest(model) -> str | None:
    """A digest of what a learned model scores with (None for the default ranking): the same whether the model
    was read from its JSON or from the index's arrays (recommender.rank.learneddata, which has no lists)."""
    if model is None:
        return None
    data = {k: v for k, v in asdict(model).items() if k in ("signals", "mean", "scale", "coef", "intercept",
                                                            "curated", "normalise")}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def graph_signatures(graph, ids: list[str], signatures: list[str]) -> list[str]:
    """Each article's signature with its graph facts folded in (ids, not rows: a removal renumbers rows)."""
    def ids_of(matrix, row):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        if start == stop:  # most articles: in no curated list
            return []
        return sorted(zip((ids[c] for c in matrix.indices[start:stop]), matrix.data[start:stop].tolist()))

    out = []
    matrices = (graph.lists, graph.lists_t, graph.co)
    for row, sig, named, links in zip(range(len(signatures)), signatures, np.asarray(graph.named_by).tolist(),
                                      np.asarray(graph.in_links).tolist()):
        facts = [sig, float(named), float(links), *(ids_of(m, row) for m in matrices)]
        out.append(hashlib.sha1(json.dumps(facts).encode()).hexdigest())
    return out


def recording(rescorer, frozen):
    """The rescorer, also recording each query's RECORDED strongest candidates (rows and strengths, in the order
    `neighbour_lists` ranks them) and an upper bound of the other candidates' strength (-inf: none)."""

    def record(cand):
        q = int(cand.query)
        if q >= 0:
            n = len(frozen.ids)
            rows = frozen.bounds.setdefault("voters", np.full((n, RECORDED), -1, dtype=np.int64))
            values = frozen.bounds.setdefault("voter_strength", np.full((n, RECORDED), np.nan))
            cut = frozen.bounds.setdefault("voter_cut", np.full(n, np.nan))
            strength = voter_strength(cand.z, len(cand.rows))
            top = np.argsort(-strength, kind="stable")
            rows[q], values[q] = -1, np.nan
            rows[q, :min(RECORDED, len(top))] = cand.rows[top[:RECORDED]]
            values[q, :min(RECORDED, len(top))] = strength[top[:RECORDED]]
            cut[q] = float(strength[top[RECORDED]]) if len(top) > RECORDED else -np.inf

    def rescore(cand):
        record(cand)
        return rescorer(cand)

    def many(cands):
        for cand in cands:
            record(cand)
        return rescorer.many(cands)

    if hasattr(rescorer, "many"):
        rescore.many = many
    return rescore


def prepare(job, frozen, state: dict, prev: np.ndarray, same: np.ndarray) -> str | None:
    """Before an incremental plan: the reason for a full run instead, or None after freezing the graph's
    embedding moments (dense_rz) and carrying the kept lists' records over (renumbered; removed rows -2)."""
    if job.graph is None:  # its reach rules bound a linear model over the site's own signals and lists
        return "transferable default ranking (features centred per query: no reach rules)"
    reason = full_run_reason(job.site_facts)  # a signal reads a statistic not frozen (the tag IDF)
    if reason:
        return reason
    if job.ann is not None:
        return "learned ranking over an approximate vector index"
    if "bound_voters" not in state:
        return "no candidates recorded for the learned ranking"
    if job.windows is not None and "near_len" not in state:
        return "no window pools and margins recorded for the learned ranking"
    n = len(prev)
    graph = job.graph  # SciPy matrices (graph_signals) or the mapped CSR arrays of rank.learneddata
    job.graph = replace(graph, mean_vector=frozen.mean_vector, second_moment=frozen.second_moment,
                        dense_stats=np.full((n, 2), np.nan, dtype=np.float32),
                        **{name: as_csr(getattr(graph, name), n) for name in ("mentions", "mentions_t", "lists",
                                                                            "lists_t", "co")})
    old = state["bound_voters"]
    renumber = margin_follow.renumbering(prev, len(old))
    rows, values, cut = np.full((n, RECORDED), -1, np.int64), np.full((n, RECORDED), np.nan), np.full(n, np.nan)
    kept = np.flatnonzero(same)
    rows[kept] = renumber[old[prev[kept]]]
    values[kept] = state["bound_voter_strength"][prev[kept]]
    cut[kept] = state["bound_voter_cut"][prev[kept]]
    frozen.bounds.update(voters=rows, voter_strength=values, voter_cut=cut)
    return None


def reached_by_learned_score(job, frozen, state: dict, prev: np.ndarray, stored: np.ndarray, moved: np.ndarray,
                             reasons: dict, rest: np.ndarray, thr: np.ndarray | None, follow: np.ndarray,
                             block: int = 256) -> np.ndarray:
    """L3, LN and R4 for the rows not already recomputed; their exact new pool bounds for the next run.
    `rest`: the rows not already recomputed, `thr` their stored lists' entry scores (incremental.thresholds);
    `follow`: rows showing a changed article to be made again from their margins (margin_follow; their threshold
    is the margin's floor)."""
    policy, ranker = job.policy, job.ranker()
    out = np.zeros(len(prev), dtype=bool)
    voters, values, cut = (frozen.bounds[k] for k in ("voters", "voter_strength", "voter_cut"))
    for k in ("voters", "voter_strength", "voter_cut"):  # removed rows are not kept in the next record
        frozen.bounds[k] = frozen.bounds[k].copy()
    frozen.bounds["voters"][frozen.bounds["voters"] < -1] = -1
    if not len(rest):
        return out
    bonus = policy.links.bonus_bound
    used = {part: ranker.uses(part) for part in ("lexical", "mention", "window")}
    stats = QueryStats(job, frozen, used)
    owners = np.diff(job.graph.lists.indptr) > 0
    n, depth = len(prev), min(len(prev), ranker.ranking.candidates + 1)
    l3, ln = np.zeros(len(rest), dtype=bool), np.zeros(len(rest), dtype=bool)
    voter_reasons: dict[str, int] = {}
    new_bounds = {"dense": np.full(len(rest), np.nan), "lexical": np.full(len(rest), -np.inf),
                  "window": np.full(len(rest), -np.inf), "mention": np.zeros(len(rest))}
    mentioned = mention_depth(ranker.ranking.candidates + 1)
    side = WindowSide(ranker, frozen, rest, moved, depth, POOL_EPS) if used["window"] else None
    tops = TopSide(job, frozen, rest, moved, depth, POOL_EPS, used["lexical"])
    lw = np.zeros(len(rest), dtype=bool)  # window pool not followed: ranked again
    margins = frozen.margins
    for q in [q for q, (rows, _, _) in margins.items() if not follow[q] and ((rows < 0) | moved[rows]).any()]:
        del margins[q]  # a changed article in the margin of a list that shows none: no longer followed
    floor = np.array([margins[q][2] if q in margins else np.nan for q in rest])
    entrants: dict[int, dict] = {}  # followed row -> {changed article in its pools: its new score}
    # the fast path: the lists whose pools keep their members (steady_pools), their changed pairs alone
    steady = Steady(job, frozen, rest, moved, depth, mentioned, tops, side, used) if len(tops.cols) else None
    fast = steady.ok.copy() if steady is not None else np.zeros(len(rest), dtype=bool)
    if steady is not None:
        settle(job, stats, steady, fast, thr, floor, bonus, voters, values, cut, owners, l3, ln, voter_reasons,
               margins, reasons, follow[rest], entrants)
        steady.commit(np.flatnonzero(fast & ~l3 & ~ln), new_bounds)
    reasons["(learned: pools kept, changed pairs alone)"] = int(fast.sum())
    slow_at = np.flatnonzero(~fast)
    for start in range(0, len(slow_at), block):
        part = slow_at[start:start + block]
        r = rest[part]
        cuts = steady.cuts[part] if steady is not None and steady.cuts is not None else None
        sure_in_new, sure_out_new, sure_in_old, sure_out_old, new_cut = mention_membership(
            job, frozen, r, mentioned, n, used["mention"], cuts)
        if new_cut is not None:
            new_bounds["mention"][part] = new_cut
        a, b, c, d, found = tops.membership(part, r, {name: frozen.bounds[name][r] for name in tops.names})
        sure_in_new |= a
        sure_out_new &= b
        sure_in_old |= c
        sure_out_old &= d
        for name, values_ in found.items():
            new_bounds[name][part] = values_
        if side is not None:
            a, b, c, d, new_bounds["window"][part], lost = side.membership(part, r, frozen.bounds["window"][r])
            sure_in_new |= a
            sure_out_new &= b
            sure_in_old |= c
            sure_out_old &= d
            lw[part] = lost
        self_ = r[:, None] == np.arange(n)[None, :]
        unmoved_change = ~((sure_in_new & sure_in_old) | (sure_out_new & sure_out_old)) & ~moved[None, :]
        moved_in = moved[None, :] & ~sure_out_new
        qi, cols = np.nonzero((unmoved_change | moved_in) & ~self_ & ~lw[part][:, None])
        pairs = tops.pair_values(r[qi], cols)
        if side is not None:
            pairs["window"], pairs["window_max"] = side.pair_values(r[qi], cols)
        score, strength = pair_scores(job, stats, r[qi], cols, pairs, voters[r[qi]], values[r[qi]])
        hit = score + bonus >= thr[part[qi]] - LEARNED_EPS
        at_floor = score + bonus >= floor[part[qi]] - LEARNED_EPS  # False without a margin
        mine_ = follow[r[qi]]
        unsure = (np.abs(score + bonus - floor[part[qi]]) <= LEARNED_EPS) | ~sure_in_new[qi, cols]
        hit = np.where(mine_, at_floor & (~moved[cols] | unsure), hit)
        np.logical_or.at(l3, part[qi[hit]], True)
        for j, c, value in zip(qi[mine_ & at_floor & ~hit], cols[mine_ & at_floor & ~hit],
                               score[mine_ & at_floor & ~hit]):
            entrants.setdefault(int(r[j]), {})[int(c)] = float(value)
        for q in set(r[qi[~mine_ & at_floor]].tolist()):  # something reached the floor: the margin is unknown
            margins.pop(q, None)
        entering = ~sure_out_new[qi, cols]
        # most lists' records stand as they are: no recorded candidate changed, left or sits at the boundary, and
        # nothing entered above the record's cut; only the others are looked at one by one
        rec = voters[r]
        safe, at = np.where(rec >= 0, rec, 0), np.arange(len(r))[:, None]
        touched = (rec == -2) | ((rec >= 0) & (moved[safe] | sure_out_new[at, safe] |
                                               (~sure_in_new[at, safe] & (np.nan_to_num(values[r]) > 0))))
        slow = touched.any(axis=1) | np.isnan(cut[r])
        slow[qi[entering & ~(strength <= cut[r][qi])]] = True
        for j, q in enumerate(r):
            if l3[part[j]] or lw[part[j]] or not slow[j]:
                continue
            mine = qi == j
            why = voters_change(voters[q], values[q], cut[q], sure_out_new[j], sure_in_new[j], moved, owners,
                                cols[mine & entering], strength[mine & entering], frozen.bounds, q)
            if why:
                ln[part[j]] = True
                voter_reasons[why] = voter_reasons.get(why, 0) + 1
    r4 = duplicates(frozen, rest)
    mine = follow[rest]
    untold = mine & ~(l3 | ln | r4 | lw)  # followed: made again from its margin when that is sure
    has_copy = frozen.duplicates.has_copy if frozen.duplicates is not None else np.zeros(n, dtype=bool)
    for j in np.flatnonzero(untold):
        q = int(rest[j])
        made = margin_follow.replay(job, q, margins[q], moved, entrants.get(q, {}), has_copy, LEARNED_EPS)
        if made is not None:
            untold[j] = False
            frozen.followed[q], margins[q], frozen.above[q] = made
    reasons["shows a changed article, made again from its margin (learned)"] = int(len(frozen.followed))
    fell = mine & (untold | l3 | ln | r4 | lw)
    for name, hit in (("shows a changed article, its margin cannot tell (learned)", fell),
                      ("a changed or displaced article reaches its threshold (learned)", l3 & ~mine),
                      ("its window pool cannot be told without retrieving again (learned)", lw & ~l3 & ~mine),
                      ("its strongest candidates' lists changed (learned)", ln & ~l3 & ~lw & ~mine),
                      ("near-duplicates", r4 & ~l3 & ~ln & ~lw & ~mine)):
        reasons[name] = int(hit.sum())
    reasons.update({f"(learned voters: {k})": v for k, v in sorted(voter_reasons.items())})
    out[rest] = l3 | ln | r4 | lw | untold
    keep = ~out[rest]
    frozen.keep_bounds(rest[keep], {b: new_bounds[b][keep] for b in new_bounds})
    return out


def settle(job, stats, steady, fast, thr, floor, bonus, voters, values, cut, owners, l3, ln, voter_reasons,
           margins, reasons, mine, entrants) -> None:
    """L3, a margin reached and LN for the kept lists on the fast path (`fast`: positions in steady.rest whose
    pools keep their members): their pairs with their changed members alone, tested as the slow path tests
    them (`voters_change` with the exact pool membership). A list made again from its margin (`mine`, by
    position) is tested against its floor instead: a changed member at the floor, within the slack, ranks it
    again; one above it is an entrant of its replay (`entrants`: row -> {changed article: its new score})."""
    keep = fast[steady.pairs_j]
    js, cs = steady.pairs_j[keep], steady.pairs_c[keep]
    qs = steady.rest[js]
    pairs = steady.tops.pair_values(qs, cs)
    if steady.side is not None:
        pairs["window"], pairs["window_max"] = steady.side.pair_values(qs, cs)
    score, strength = pair_scores(job, stats, qs, cs, pairs, voters[qs], values[qs])
    total, followed = score + bonus, mine[js]
    at_floor = total >= floor[js] - LEARNED_EPS  # False without a margin (NaN)
    hit = np.where(followed, at_floor & (np.abs(total - floor[js]) <= LEARNED_EPS), total >= thr[js] - LEARNED_EPS)
    l3[js[hit]] = True
    reasons["(learned, pools kept: a changed member reaches its threshold)"] = int(len(np.unique(js[hit & ~followed])))
    enter = followed & at_floor & ~hit
    for q, c, value in zip(qs[enter], cs[enter], score[enter]):
        entrants.setdefault(int(q), {})[int(c)] = float(value)
    for q in set(qs[~followed & at_floor].tolist()):  # the margin is unknown
        margins.pop(q, None)
    moved, bounds = steady.moved, steady.frozen.bounds
    strong = np.zeros(len(fast), dtype=bool)
    strong[js[~(strength <= cut[qs])]] = True
    order = np.argsort(js, kind="stable")
    ends = np.searchsorted(js[order], np.arange(len(fast) + 1))
    for j in np.flatnonzero(fast & ~l3):
        q = int(steady.rest[j])
        rec = voters[q]
        mask = steady.in_pools(int(j))
        known = rec >= 0
        if not (strong[j] or np.isnan(cut[q]) or (rec == -2).any() or moved[rec[known]].any() or
                (~mask[rec[known]]).any()):
            continue
        mine = order[ends[j]:ends[j + 1]]
        why = voters_change(voters[q], values[q], cut[q], ~mask, mask, moved, owners, cs[mine], strength[mine],
                            bounds, q)
        if why:
            ln[j] = True
            voter_reasons[why] = voter_reasons.get(why, 0) + 1


def voters_change(rows, values, cut, sure_out, sure_in, moved, owners, new_rows, new_values, bounds, q) -> str:
    """LN for one kept list: why the owners among its 20 strongest candidates (positive strength) can differ now
    ("" when they cannot: its record is then brought up to date in `bounds`)."""
    if np.isnan(cut):
        return "no record"
    valid = rows != -1
    old_top = [(r, v) for r, v in zip(rows[valid][:NEIGHBOURS], values[valid][:NEIGHBOURS]) if v > 0]
    if any(r == -2 or (moved[r] and owners[r]) for r, _ in old_top):  # a list that votes changed, or unknown
        return "a voter changed or was removed"
    merged = []
    for r, v in zip(rows[valid], values[valid]):
        if r < 0 or moved[r] or sure_out[r]:
            continue
        if not sure_in[r] and v > 0:
            return "a voter at the pool boundary"  # a candidate or not, cannot tell
        merged.append((r, v))
    have = {r for r, _ in merged}
    merged += [(int(r), float(v)) for r, v in zip(new_rows, new_values) if r not in have]
    merged.sort(key=lambda x: -x[1])
    strengths = [v for _, v in merged]
    if cut > 0 and (len(merged) < NEIGHBOURS or strengths[NEIGHBOURS - 1] <= cut + STRENGTH_EPS):
        return "the new 20th not recorded"
    if len(merged) > NEIGHBOURS and strengths[NEIGHBOURS - 1] > 0:
        tied = [owners[r] for r, v in merged if abs(v - strengths[NEIGHBOURS - 1]) <= STRENGTH_EPS]
        if len(tied) > 1 and any(tied) and strengths[NEIGHBOURS] >= strengths[NEIGHBOURS - 1] - STRENGTH_EPS:
            return "a tie at the 20th"  # an owner among candidates the order of the pool decides
    new_top = merged[:NEIGHBOURS]
    if {r for r, v in old_top if owners[r]} != {r for r, v in new_top if v > 0 and owners[r]}:
        return "other voters"
    if any(moved[r] for r, v in new_top if v > 0 and owners[r]):
        return "a voter changed or was removed"
    kept = merged[:RECORDED]
    bounds["voters"][q], bounds["voter_strength"][q] = -1, np.nan
    bounds["voters"][q, :len(kept)] = [r for r, _ in kept]
    bounds["voter_strength"][q, :len(kept)] = [v for _, v in kept]
    dropped = [v for _, v in merged[RECORDED:]]
    bounds["voter_cut"][q] = max([cut] + dropped)
    return ""
