"""Which lists a change can reach under the default ranking when the window candidates come from an approximate
index (store.windowann, IVF: a site above windowstage.EXACT_WINDOW_SEARCH stored windows).

R5 of `incremental.py` bounds an article outside every pool by the pools' boundaries, the window part by the
outsider bound of the list's retrieval: an article owning no window a search found scores at most what the last
found windows give. That holds for an exact search, not for an IVF one: a window in a list the search did not
probe, nearer than every window found, is not found. So here no bound stands in for the outsiders; instead
every pool of a kept list is found again exactly, as under a learned ranking (learned_reach): the dense and
lexical pools from the stored pools (pool_follow.TopSide), the mention pool from the list's mention row and cut,
and the window pool from the stored retrieval (window_batch.WindowSide: the IVF keeps its training and nprobe
from night to night, so an unchanged query window finds what it found before but for the windows added or
removed; which new ones it finds is asked of an index of the new windows alone with the same training). A kept
list is then ranked again only when:

* A3: a new or changed article in its new pools, or an unchanged article entering or leaving them (which the
  window pool's changes cause: a new window pushes another out, a removed one lets the next one in), scores
  (exactly, for those pairs alone, with the frozen statistics) at or above the list's threshold;
* AW: its new window pool cannot be told from what it stored (ties at a query window's boundary, or its margin
  ran out): retrieving again is ranking again;
* R4: the near-duplicate collapse can change it (copy_reach), as in `incremental.py`.

An article in no pool before or after is not a candidate either time: it cannot change the list. R1 and R2 are
`incremental.plan`'s. Pools need their stored records (the lists state keeps them under an approximate window
search: window_record.Record.key); a dense pool from an approximate vector index is not an exact top and gets a
full run (`full_run_reason`).
"""

from __future__ import annotations

import numpy as np

from ..rank.candidates import mention_depth
from .copy_reach import duplicates
from .learned_pairs import QueryStats
from .learned_reach import POOL_EPS  # float slack of the pool membership tests
from .pool_follow import TopSide, mention_membership
from .window_batch import WindowSide
from .window_reach import EPS


def full_run_reason(job) -> str | None:
    """Why the default ranking's pools cannot be followed under an approximate window search (None: they can)."""
    if job.ann is not None:
        return "approximate window search over an approximate vector index (its dense pools are not exact tops)"
    if job.site_facts is not None:
        return "approximate window search on a site with tags (the shared-tag pool is not followed)"
    return None


def pair_scores(job, stats: QueryStats, weights: dict, qs: np.ndarray, cs: np.ndarray, pairs: dict) -> np.ndarray:
    """The default ranking's score of each pair (qs[i], cs[i]) from its parts' raw values (`pairs`), z-scored with
    the frozen statistics of the query: as incremental.reached_by_fixed_score scores a changed article (R3)."""
    raw = dict(pairs)
    if "mention" in weights:
        mentions = job.lexical.mentions
        raw["mention"] = np.asarray(mentions[qs, cs], np.float64).ravel() + \
            np.asarray(mentions[cs, qs], np.float64).ravel() if len(qs) else np.zeros(0)
    norm = sum(weights.values())
    return sum(w * stats.z(p, qs, np.asarray(raw[p], np.float64)) for p, w in weights.items()) / norm


def reached_by_pools(job, frozen, state: dict, prev: np.ndarray, moved: np.ndarray, reasons: dict,
                     rest: np.ndarray, thr: np.ndarray | None, block: int = 256) -> np.ndarray:
    """A3, AW and R4 (module docstring) for the rows `rest` (not already recomputed; `thr`: their stored lists'
    entry scores, incremental.thresholds); the kept rows' new pool bounds and records for the next night.
    `moved`: new and changed rows."""
    policy, ranker = job.policy, job.ranker()
    out = np.zeros(len(prev), dtype=bool)
    if not len(rest):
        return out
    bonus = policy.links.bonus_bound
    used = {part: ranker.uses(part) for part in ("lexical", "mention", "window", "window_max")}
    weights = {p: ranker.weights[p] for p in ("dense", *(p for p, u in used.items() if u))}
    stats = QueryStats(job, frozen, used)
    n, depth = len(prev), min(len(prev), ranker.ranking.candidates + 1)
    mentioned = mention_depth(ranker.ranking.candidates + 1)
    new_bounds = {"dense": np.full(len(rest), np.nan), "lexical": np.full(len(rest), -np.inf),
                  "window": np.full(len(rest), -np.inf), "mention": np.zeros(len(rest))}
    side = WindowSide(ranker, frozen, rest, moved, depth, POOL_EPS)
    tops = TopSide(job, frozen, rest, moved, depth, POOL_EPS, used["lexical"])
    a3, aw = np.zeros(len(rest), dtype=bool), np.zeros(len(rest), dtype=bool)
    for start in range(0, len(rest), block):
        part = np.arange(start, min(len(rest), start + block))
        r = rest[part]
        in_new, out_new, in_old, out_old, new_cut = mention_membership(job, frozen, r, mentioned, n, used["mention"])
        if new_cut is not None:
            new_bounds["mention"][part] = new_cut
        sides = [tops.membership(part, r, {name: frozen.bounds[name][r] for name in tops.names})]
        sides.append(side.membership(part, r, frozen.bounds["window"][r]))
        for a, b, c, d, *rest_ in sides:
            in_new |= a
            out_new &= b
            in_old |= c
            out_old &= d
        for name, values in sides[0][4].items():
            new_bounds[name][part] = values
        new_bounds["window"][part], lost = sides[1][4], sides[1][5]
        aw[part] = lost
        self_ = r[:, None] == np.arange(n)[None, :]
        unmoved_change = ~((in_new & in_old) | (out_new & out_old)) & ~moved[None, :]
        moved_in = moved[None, :] & ~out_new
        qi, cols = np.nonzero((unmoved_change | moved_in) & ~self_ & ~lost[:, None])
        pairs = tops.pair_values(r[qi], cols)
        pairs["window"], pairs["window_max"] = side.pair_values(r[qi], cols)
        score = pair_scores(job, stats, weights, r[qi], cols, pairs)
        hit = score + bonus >= thr[part[qi]] - EPS
        np.logical_or.at(a3, part[qi[hit]], True)
    r4 = duplicates(frozen, rest)
    for name, hit in (("a changed or displaced article reaches its threshold (pools followed)", a3),
                      ("its window pool cannot be told without retrieving again", aw & ~a3),
                      ("near-duplicates", r4 & ~a3 & ~aw)):
        reasons[name] = int(hit.sum())
    out[rest] = a3 | aw | r4
    keep = ~out[rest]
    frozen.keep_bounds(rest[keep], {b: new_bounds[b][keep] for b in new_bounds})
    return out
