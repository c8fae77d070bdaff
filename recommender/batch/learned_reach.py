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
whose pools are told exactly from its records takes a fast path (steady_pools: the argument is in its docstring):
only its pairs with its changed candidates and with the unchanged articles entering or leaving its candidates are
scored, under the same L3 and LN tests (`settle`). A kept list is then
ranked again only when:

* L3: a new or changed article in its new pools, or an unchanged article entering or leaving them, has an exact
  learned score (computed for those pairs only, vectorised: learned_pairs) that reaches the list's threshold,
  unless the list has a margin that can tell it (every such pair at its floor a changed article sure to be in the
  pools, none within the slack of the floor): then it is made again from its margin (`floor_tests`);
* LW: its new window pool cannot be told from what it stored (window_reach.follow);
* LN: the curated-list owners among its 20 strongest candidates (with a positive strength) change, or one of
  them was removed, or the new top 20 cannot be told from the record (ties, or too many left). When the owners
  are the same but a changed one among them votes with a new strength, the candidates its list holds are scored
  again and the list is made again from its margin, if that is sure (voter_reach); else LN.

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
from ..rank.signaltable import full_run_reason
from .learned_pairs import QueryStats, as_csr, pair_scores, voter_strength
from .pool_follow import TopSide, mention_membership
from . import margin_follow
from .copy_reach import duplicates
from .window_batch import WindowSide
from .steady_pools import Steady
from .voter_reach import RECORDED, REWEIGHED, reweighed_scores, voters_change

LEARNED_EPS = 1e-3  # float slack of the learned score tests (float32 signals standardised and weighted)
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
    tops = TopSide(job, frozen, rest, moved, depth, POOL_EPS, used["lexical"])  # its head pools start retrieving
    side = WindowSide(ranker, frozen, rest, moved, depth, POOL_EPS) if used["window"] else None
    lw = np.zeros(len(rest), dtype=bool)  # window pool not followed: ranked again
    raw_pairs = pair_values(tops, side)
    margins = frozen.margins
    # margins dropped at the end unless made again: a changed article in the margin of a list that shows none (no
    # longer followed), or one at the floor of such a list (the margin is unknown)
    unknown = {q for q, (rows, _, _) in margins.items() if not follow[q] and ((rows < 0) | moved[rows]).any()}
    floor = np.array([margins[q][2] if q in margins else np.nan for q in rest])
    entrants: dict[int, dict] = {}  # followed row -> {changed article in its pools: its new score}
    reweigh: dict[int, tuple] = {}  # position -> what voter_reach.reweighed_scores needs (voters_change REWEIGHED)
    entered = np.zeros(len(rest), dtype=bool)  # a changed article reaches it: made again from its margin (floor_tests)
    # the fast path: the lists whose pools are told exactly (steady_pools), their changed and displaced pairs alone
    steady = Steady(job, frozen, rest, moved, depth, mentioned, tops, side, used) if len(tops.cols) else None
    fast = steady.ok.copy() if steady is not None else np.zeros(len(rest), dtype=bool)
    if steady is not None:
        settle(job, stats, steady, fast, thr, floor, bonus, voters, values, cut, owners, l3, ln, voter_reasons,
               unknown, reasons, follow[rest], entrants, reweigh, entered)
        steady.commit(np.flatnonzero(fast & ~l3 & ~ln), new_bounds)
    reasons["(learned: pools followed, changed and displaced pairs alone)"] = int(fast.sum())
    if steady is not None:  # of them, lists whose pools were followed to other members (their displaced pairs too)
        reasons["(learned: pools followed, of them with other members)"] = \
            int(fast[np.fromiter(steady.shifted, dtype=np.int64, count=len(steady.shifted))].sum())
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
        score, strength = pair_scores(job, stats, r[qi], cols, raw_pairs(r[qi], cols), voters[r[qi]],
                                      values[r[qi]])
        hit, at_floor = floor_tests(part[qi], score + bonus, thr, floor, follow[r[qi]],
                                    moved[cols] & sure_in_new[qi, cols], entered)
        np.logical_or.at(l3, part[qi[hit]], True)
        take = at_floor & ~hit & (follow[r[qi]] | entered[part[qi]])
        for j, c, value in zip(qi[take], cols[take], score[take]):
            entrants.setdefault(int(r[j]), {})[int(c)] = float(value)
        unknown.update(r[qi[~follow[r[qi]] & at_floor]].tolist())  # the margin is unknown, unless made again
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
            if why == REWEIGHED:
                reweigh[int(part[j])] = cols[mine], sure_in_new[j].copy(), sure_out_new[j].copy()
            elif why:
                ln[part[j]] = True
                voter_reasons[why] = voter_reasons.get(why, 0) + 1
    moved_for = reweighed_voters(job, stats, raw_pairs, rest, reweigh, moved, floor, bonus, margins, l3, ln, lw,
                                 entrants, voter_reasons, frozen.bounds)
    r4 = duplicates(frozen, rest)
    mine = follow[rest]
    voted = np.zeros(len(rest), dtype=bool)
    voted[[j for j in reweigh if int(rest[j]) in moved_for]] = True
    untold = (mine | voted | entered) & ~(l3 | ln | r4 | lw)  # made again from its margin when that is sure
    has_copy = frozen.duplicates.has_copy if frozen.duplicates is not None else np.zeros(n, dtype=bool)
    for j in np.flatnonzero(untold):
        q = int(rest[j])
        made = margin_follow.replay(job, q, margins[q], moved_for.get(q, moved), entrants.get(q, {}), has_copy,
                                    LEARNED_EPS)
        if made is not None:
            untold[j] = False
            frozen.followed[q], margins[q], frozen.above[q] = made
            unknown.discard(q)
    for q in unknown:
        margins.pop(q, None)
    remade = np.array([int(q) in frozen.followed for q in rest], dtype=bool)
    reasons["shows a changed article, made again from its margin (learned)"] = int((remade & mine).sum())
    reasons["a changed article reaches it, made again from its margin (learned)"] = \
        int((remade & entered & ~mine).sum())
    reasons["its strongest candidates' strength changed, made again from its margin (learned)"] = \
        int((remade & ~entered & ~mine).sum())
    refused = voted & untold & ~mine & ~entered
    if refused.any():
        voter_reasons[f"{REWEIGHED}, its replay refused"] = int(refused.sum())
    ln |= refused
    l3 |= entered & untold & ~mine  # its replay refused: ranked again, as L3 would have
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


def at_floor(total: np.ndarray, floor, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each pair at or above its list's floor, within the slack (False without a margin: NaN); of those, the ones
    a replay cannot take: not `good`, or within the slack of the floor)."""
    at = total >= floor - LEARNED_EPS
    return at, at & ((np.abs(total - floor) <= LEARNED_EPS) | ~good)


def floor_tests(js: np.ndarray, total: np.ndarray, thr: np.ndarray, floor: np.ndarray, followed: np.ndarray,
                good: np.ndarray, entered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tests of the pairs (list at position js[i], a candidate whose score changed or that joined or left its
    pools; total: its new score with the topic bonus bound; good: a changed article sure to be in the pools, which
    a replay can take): (L3 per pair, at or above the list's floor per pair). A list made again from its margin
    (`followed`) is ranked again for a pair at its floor that is not good or sits within the slack of it. Another
    list is ranked again for a pair that reaches its threshold, unless it has a margin and none of its pairs at the
    floor is like that: then it is made again from its margin too (`entered`, by position, set here)."""
    at, bad = at_floor(total, floor[js], good)
    reach = ~followed & (total >= thr[js] - LEARNED_EPS)
    spoilt = np.zeros(len(entered), dtype=bool)
    spoilt[js[bad | (reach & ~at)]] = True  # (a threshold under the floor: the margin holds no such entry)
    lists = np.unique(js[reach])
    lists = lists[~spoilt[lists] & ~np.isnan(floor[lists])]
    entered[lists] = True
    return np.where(followed | entered[js], bad, reach), at


def settle(job, stats, steady, fast, thr, floor, bonus, voters, values, cut, owners, l3, ln, voter_reasons,
           unknown, reasons, mine, entrants, reweigh, entered) -> None:
    """L3, a margin reached and LN for the kept lists on the fast path (`fast`: positions in steady.rest whose
    pools keep their members): their pairs with their changed members alone, tested as the slow path tests
    them (`voters_change` with the exact pool membership). A list made again from its margin (`mine`, by
    position) is tested against its floor instead: a changed member at the floor, within the slack, ranks it
    again; one above it is an entrant of its replay (`entrants`: row -> {changed article: its new score})."""
    keep = fast[steady.pairs_j]
    js, cs, inside = steady.pairs_j[keep], steady.pairs_c[keep], steady.pairs_in[keep]
    qs = steady.rest[js]
    score, strength = pair_scores(job, stats, qs, cs, pair_values(steady.tops, steady.side)(qs, cs), voters[qs],
                                  values[qs])
    followed = mine[js]
    # a changed article among the new candidates is sure to be in the pools (a replay can take it); an unchanged one
    # entering or leaving them is not (as the slow path's `good`)
    hit, at_floor = floor_tests(js, score + bonus, thr, floor, followed, inside & steady.moved[cs], entered)
    l3[js[hit]] = True
    reasons["(learned, pools followed: a changed or displaced member reaches its threshold)"] = \
        int(len(np.unique(js[hit & ~followed])))
    enter = at_floor & ~hit & (followed | entered[js])
    for q, c, value in zip(qs[enter], cs[enter], score[enter]):
        entrants.setdefault(int(q), {})[int(c)] = float(value)
    unknown.update(qs[~followed & at_floor].tolist())  # the margin is unknown, unless made again
    moved, bounds = steady.moved, steady.frozen.bounds
    strong = np.zeros(len(fast), dtype=bool)
    strong[js[inside & ~(strength <= cut[qs])]] = True
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
        now = mine[inside[mine]]  # its pairs among its new candidates
        why = voters_change(voters[q], values[q], cut[q], ~mask, mask, moved, owners, cs[now], strength[now],
                            bounds, q)
        if why == REWEIGHED:
            reweigh[int(j)] = cs[mine], mask, ~mask
        elif why:
            ln[j] = True
            voter_reasons[why] = voter_reasons.get(why, 0) + 1


def pair_values(tops, side):
    """The raw part values of pairs (qs, cs), as the learned score reads them: dense and lexical (TopSide), window
    (WindowSide, when the ranking uses it)."""
    def values(qs: np.ndarray, cs: np.ndarray) -> dict:
        pairs = tops.pair_values(qs, cs)
        if side is not None:
            pairs["window"], pairs["window_max"] = side.pair_values(qs, cs)
        return pairs

    return values


def reweighed_voters(job, stats, raw_pairs, rest, reweigh: dict, moved, floor, bonus, margins, l3, ln, lw, entrants,
                     voter_reasons, bounds) -> dict:
    """The kept lists whose voters_change was REWEIGHED (`reweigh`: position -> its scored pairs' candidates and
    its sure-in and sure-out masks): each made again from its margin (returned: row -> the articles its replay
    counts as changed, `entrants` replaced by its pairs at the floor under the new record) when that is sure, as a
    followed list's: no candidate at the floor within the slack, none whose membership changed or is unsure at or
    above it. Else LN. Every pair scored again counts as changed, so one that left the pools leaves the margin."""
    out = {}
    for j, (cols, sure_in, sure_out) in reweigh.items():
        q = int(rest[j])
        got = None if l3[j] or lw[j] or q not in margins else \
            reweighed_scores(job, stats, raw_pairs, q, cols, sure_in, sure_out, moved, bounds)
        if got is not None:
            cs, score = got
            at, unsure = at_floor(score + bonus, floor[j], sure_in[cs] & (moved[cs] | ~np.isin(cs, cols)))
            if not unsure.any():
                entrants[q] = {int(c): float(value) for c, value in zip(cs[at], score[at])}
                out[q] = moved.copy()
                out[q][cs] = True  # scored again: the replay takes each from `entrants` or not at all
                continue
        ln[j] = True
        why = f"{REWEIGHED}, its margin cannot tell"
        voter_reasons[why] = voter_reasons.get(why, 0) + 1
    return out
