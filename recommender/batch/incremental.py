"""Recompute only the related lists a change can reach, with the corpus statistics of the last full rebuild.

Why not "every list whose candidate pool a change enters or leaves": each article sits in the candidate pools
(200 dense + 200 window + 200 lexical + mentions) of hundreds of others, so 1% of changed articles touches
91-100% of the pools on python_docs (docs/batch.md). What decides a list is narrower. With the statistics frozen
(embedding mean and second moment; each query's window, lexical and mention row mean and deviation; IDF in the
lexical index), the score of a pair depends only on the two articles, and a list changes only if:

* R1 the article itself is new or changed (any field), or an override of it changed, or it pins a new article;
* R2 a changed or removed article is in its stored list (its score or its presence changes);
* R3 a new or changed article's score in it (an upper bound: before filters and adjustments, plus the topic
  bonus) reaches the list's threshold (its last ranked score when full, else the minimum score);
* R4 the near-duplicate collapse can change it: a changed or removed article that had a copy sat at or above its
  threshold, or a dated article there has a dated copy (copy_reach: the copy graph and each list's candidates at
  or above its threshold are kept in the state);
* R5 an article outside every pool could reach the threshold (the bound from the weakest pool members, raised
  by what entered the pools since), and anything changed: a pool that loses a member takes in an outsider.
  Under the two-stage ranking the window pool is not the top of a row: its bound also holds the outsider bound
  of the list's window retrieval, which rises when a changed article's window comes nearer to a query window
  than the last one it retrieved (window_reach.ChangedWindows). So an unchanged article pushed out of the window
  pool, whose score did not change, is an outsider R5 bounds. The mention pool holds the entries of the query's
  mention row above a cut (rank.candidates.mention_pool): an outsider's mention is at most the cut, and a new
  cut is at most the old one or a changed article's mention. A lexical pool from the posting lists' heads is not
  the top of its row: its outsiders are bounded by the bound of its retrieval over the new index (head_pools).

Each pool is one entry of POOL_PARTS (its boundary, and the part of the score it bounds), so a new candidate
pool (shared tags, say) is one more entry and one more bound in `outsider_bound`. MMR (`mmr_lambda < 1`), the
Ray engine, a policy, model or IDF change, or a missing state mean a full run (recorded as such).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..common.heap import keep_alive
from ..rank.corpusstats import PoolBounds
from . import ann_reach, head_pools, margin_follow, window_reach
from .copy_reach import CopyReach, CopyRecord, duplicates, state_arrays
from .output_reuse import link_arrays, unchanged_rows
from .window_reach import EPS

STATE_FILE = "lists-state.npz"
# candidate pool -> the part it bounds (mention: the cut of the query's mention row, candidates.mention_pool)
POOL_PARTS = {"dense": "dense", "window": "window", "lexical": "lexical", "mention": "mention"}
ROW_PARTS = ("window", "window_max", "lexical", "mention")  # z-scored with each query's own row statistics (frozen)


@dataclass
class Frozen:
    """The statistics a ranker normalises with (rank.corpusstats.CorpusStats: see ranking.HybridRanker(frozen=...)),
    per article id, and what each computed list leaves behind (its candidates' rank.corpusstats.PoolBounds, handed
    over by relatedlists.link_rows): pool boundaries, and what copy_reach reads (R4)."""

    mean_vector: np.ndarray
    second_moment: np.ndarray
    ids: list[str]  # current row order
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # ROW_PARTS -> n x 2 (mean, std); NaN new
    bounds: dict[str, np.ndarray] = field(default_factory=dict)  # POOL_PARTS -> n
    from_scratch: bool = False  # every statistic is this corpus's own (lists ranked as a query ranks them)
    windows: object = None  # window_record.Record: each list's window retrieval (two-stage ranking)
    copies: object = None  # the copy graph (edges a, b; a full run: copy_reach.CopyRecord), None until known
    above: dict = field(default_factory=dict)  # row -> its candidates at or above its threshold (copy_reach)
    duplicates: object = None  # copy_reach.CopyReach of an incremental run (R4)
    margins: dict = field(default_factory=dict)  # row -> its ranked entries beyond k (margin_follow)
    followed: dict = field(default_factory=dict)  # row -> its links made again from its margin this run (R2)
    lexical_heads: np.ndarray | None = None  # per row: its stored lexical pool came from the heads (head_pools)

    def __post_init__(self):
        if self.windows is None:
            from .window_record import Record

            self.windows = Record(len(self.ids))

    @classmethod
    def stored(cls, state: dict, ids: list[str]) -> "Frozen":
        """The statistics a lists state froze (load_state), to rank every row again with them, as the checks of
        incremental runs do; no pool boundary is known."""
        return cls(state["mean"], state["second"], ids, {p: state[p].copy() for p in ROW_PARTS},
                   {b: np.full(len(ids), np.nan) for b in POOL_PARTS})

    @classmethod
    def fresh(cls, vectors: np.ndarray, ids: list[str]) -> "Frozen":
        v64 = vectors.astype(np.float64)
        n = max(1, len(vectors))
        return cls(vectors.mean(axis=0).astype(np.float32), ((v64.T @ v64) / n).astype(np.float32), ids,
                   {p: np.full((len(ids), 2), np.nan) for p in ROW_PARTS},
                   {b: np.full(len(ids), np.nan) for b in POOL_PARTS}, from_scratch=True)

    def row_stats(self, part: str, rows: np.ndarray, mean: np.ndarray, std: np.ndarray):
        """rank.corpusstats.CorpusStats.row_stats: the kept statistics of each row, else those computed now."""
        table = self.stats[part]
        known = ~np.isnan(table[rows, 0]) & (rows >= 0)
        safe = np.where(rows >= 0, rows, 0)
        return (np.where(known[:, None], table[safe, :1], mean).astype(mean.dtype),  # float32 as a fresh run
                np.where(known[:, None], table[safe, 1:], std).astype(std.dtype))

    def pool_bounds(self, row: int, found: PoolBounds) -> None:
        """What the ranking found of row's candidate pools (its candidates' `pools`), kept for the next night."""
        if row >= 0:
            self.bounds["dense"][row] = found.dense
            self.bounds["lexical"][row] = -np.inf if found.lexical is None else found.lexical
            self.bounds["window"][row] = -np.inf if found.window is None else found.window
            self.bounds["mention"][row] = 0.0 if found.mention is None else found.mention
            self.windows.record(row, *(found.window_record or ("exact", None)))
            self.windows.record_tops(row, found.tops)
            for part, (mean, std) in found.stats.items():  # a row's first statistics are kept from now on
                if np.isnan(self.stats[part][row, 0]):
                    self.stats[part][row] = mean, std

    def keep_bounds(self, rows: np.ndarray, pools: dict[str, np.ndarray], lasts: list | None = None) -> None:
        """The pool boundaries of lists kept as they are (`rows`), as the reach found
        them this run (`pools`: POOL_PARTS -> one value per row; `lasts`: their window lasts b_i⁺)."""
        for b in POOL_PARTS:
            self.bounds[b][rows] = pools[b]
        for row, value in zip(rows, lasts or ()):
            self.windows.lasts[int(row)] = value


def signature(article, content_hash: str) -> str:
    """What of an article can change its own list or its place in others' (curated lists cannot). The fields as
    they are (str, lists of str, None, bool): the JSON of `to_dict` (dataclasses.asdict, a deep copy of every
    field: 1.3 s of a night on MDN), without the copy."""
    data = {name: getattr(article, name) for name in _signed_fields(type(article))}
    return hashlib.sha1(json.dumps([data, content_hash], sort_keys=True, default=str).encode()).hexdigest()


@lru_cache(maxsize=None)
def _signed_fields(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind) if f.name != "curated")


def settings_key(policy, model: str, lexical, as_of_day: str | None) -> str:
    """Everything whose change invalidates every list: policy, model, the lexical fit (IDF), the date rules' day."""
    idf = hashlib.sha1(np.ascontiguousarray(lexical.idf).tobytes()).hexdigest() if lexical is not None else None
    # [batch] is about the run and [serve] about the service, not the links
    links = {name: part for name, part in policy.to_dict().items() if name not in ("batch", "serve")}
    return hashlib.sha1(json.dumps([links, model, idf, as_of_day], sort_keys=True,
                                   default=str).encode()).hexdigest()


def save_state(path: Path, *, key: str, ids: list[str], signatures: list[str], frozen: Frozen, links: tuple,
               overrides: list[dict], k: int, lexical_heads: np.ndarray, window_pools: bool = False) -> str:
    """Arrays only (np.savez, no pickle); ids, signatures and overrides as JSON bytes; links: the lists as
    output_reuse.link_arrays gives them (Plan.link_arrays); lexical_heads: whether each row's lexical pool came
    from the posting lists' heads (head_pools.current_heads). Caller renames it. Returns the state's token: the
    run record that holds it says these outputs were written with this state (batch/output_reuse.py)."""
    n = len(ids)
    rows, scores, pinned = links
    token = secrets.token_hex(8)
    meta = json.dumps({"key": key, "ids": ids, "signatures": signatures, "overrides": overrides,
                       "token": token}).encode()
    with open(path, "wb") as handle:
        np.savez(handle, meta=np.frombuffer(meta, dtype=np.uint8), mean=frozen.mean_vector,
                 second=frozen.second_moment, **{part: frozen.stats[part] for part in ROW_PARTS},
                 **{f"bound_{b}": v for b, v in frozen.bounds.items()}, rows=rows, scores=scores, pinned=pinned,
                 lexical_heads=np.asarray(lexical_heads, dtype=bool),
                 **frozen.windows.arrays(window_pools), **state_arrays(frozen, n),
                 **margin_follow.state_arrays(frozen, n, k))
    return token


def load_state(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError):
        return None
    state.update(json.loads(state.pop("meta").tobytes().decode()))
    return state


@dataclass
class Plan:
    kind: str  # "full" | "incremental"
    recompute: np.ndarray  # bool per row
    reasons: dict[str, int] = field(default_factory=dict)
    kept: dict[int, list] = field(default_factory=dict)  # row -> stored links (rows renumbered)
    previous_rows: np.ndarray | None = None  # incremental: each row's row in the state (-1: new)
    same: np.ndarray | None = None  # incremental: each row's signature is the state's
    link_arrays: tuple | None = None  # the lists as output_reuse.link_arrays gives them (compute_links)
    # what the outputs may take from the last run's (batch/output_reuse.Reuse.of)
    state_token: str | None = None
    unchanged: np.ndarray | None = None
    previous_count: int = 0


def full_plan(n: int, why: str) -> Plan:
    return Plan("full", np.ones(n, dtype=bool), {why: n})


def plan(job, ids: list[str], signatures: list[str], state: dict | None, key: str,
         overrides: list[dict]) -> tuple[Plan, Frozen]:
    """Which lists to recompute, and the frozen statistics to rank them with (see the module docstring)."""
    from ..rank.linking import Link

    n = len(ids)
    if state is None:
        return full_plan(n, "no previous state"), Frozen.fresh(job.vectors, ids)
    if state["key"] != key:
        return full_plan(n, "policy, model or lexical fit changed"), Frozen.fresh(job.vectors, ids)
    if job.policy.diversity.mmr_lambda < 1.0:
        return full_plan(n, "mmr"), Frozen.fresh(job.vectors, ids)
    learned = getattr(job, "learned", None) is not None  # its reach rules: recommender.batch.learned_reach
    ranker = job.ranker()
    approximate = window_reach.approximate(ranker)  # its pools are followed (window_reach, ann_reach)
    why = window_reach.full_run_reason(ranker, state) or (ann_reach.full_run_reason(job) if approximate and
                                                            not learned else None)
    if why:
        return full_plan(n, why), Frozen.fresh(job.vectors, ids)
    old_ids, old_sigs = state["ids"], state["signatures"]
    old_row = {x: r for r, x in enumerate(old_ids)}
    prev = np.array([old_row.get(x, -1) for x in ids], dtype=np.int64)
    same = np.array([p >= 0 and old_sigs[p] == s for p, s in zip(prev, signatures)], dtype=bool)
    current = set(ids)
    gone = {x for x in old_ids if x not in current}
    changed_ids = {ids[i] for i in np.flatnonzero(~same)} | gone
    frozen = Frozen(state["mean"], state["second"], ids)
    collapse = job.policy.duplicates.threshold < 1.0
    if any(part not in state for part in ROW_PARTS) or any(f"bound_{b}" not in state for b in POOL_PARTS) or \
            "wlast_len" not in state or (collapse and "above_ptr" not in state) or "lexical_heads" not in state:
        return full_plan(n, "state from an older version"), Frozen.fresh(job.vectors, ids)
    from .window_record import Record

    frozen.windows = Record.load(state, prev, same)
    frozen.lexical_heads = head_pools.stored_heads(state, prev, same)
    for part in ROW_PARTS:
        table = np.full((n, 2), np.nan)
        table[same] = state[part][prev[same]]
        frozen.stats[part] = table
    for b in POOL_PARTS:
        values = np.full(n, np.nan)
        values[same] = state[f"bound_{b}"][prev[same]]
        frozen.bounds[b] = values
    if collapse:
        frozen.duplicates = CopyReach(job, frozen, state, prev, same)
    if learned:
        from . import learned_reach

        why = learned_reach.prepare(job, frozen, state, prev, same)
        if why:
            return full_plan(n, why), Frozen.fresh(job.vectors, ids)
    reasons: dict[str, int] = {}
    recompute = ~same  # R1: new and changed articles
    reasons["new or changed"] = int(recompute.sum())
    old_o = {json.dumps(o, sort_keys=True) for o in state["overrides"]}
    new_o = {json.dumps(o, sort_keys=True) for o in overrides}
    touched = {json.loads(o)["article"] for o in old_o ^ new_o}
    touched |= {o["article"] for o in overrides if o.get("action") == "pin" and o["target"] in changed_ids}
    if "*" in touched:
        return full_plan(n, "overrides for every article changed"), frozen
    row_of = {x: i for i, x in enumerate(ids)}
    hit = np.zeros(n, dtype=bool)
    hit[[row_of[x] for x in touched if x in row_of]] = True
    reasons["overrides"] = int((hit & ~recompute).sum())
    recompute |= hit
    stored = state["rows"][np.where(prev >= 0, prev, 0)]  # old row numbers, -1 padded
    stored = np.where((prev >= 0)[:, None], stored, -1)
    old_changed = np.zeros(len(old_ids) + 1, dtype=bool)  # index -1 -> the padding slot
    old_changed[[old_row[x] for x in changed_ids if x in old_row]] = True
    hit = old_changed[stored].any(axis=1)  # R2
    follow = np.zeros(n, dtype=bool)  # under a learned ranking: made again from its margin, when sure (below)
    if learned:
        frozen.margins = margin_follow.load(state, prev, same)
        follow[list(frozen.margins)] = True
        follow &= hit & ~recompute
        hit &= ~follow
    keep_alive()  # the records just loaded live to the end of the run: out of later full collections
    reasons["shows a changed or removed article"] = int((hit & ~recompute).sum())
    recompute |= hit
    if not changed_ids and not reasons["overrides"]:
        recompute[:] = False
    elif changed_ids:
        job.use_frozen(frozen)
        rest = np.flatnonzero(~recompute)  # the rows the reach rules decide, and their stored lists' entry scores
        thr = thresholds(state, prev[rest], job.policy.links.k, job.policy.links.min_score) if len(rest) else None
        if learned:
            recompute |= learned_reach.reached_by_learned_score(job, frozen, state, prev, stored, ~same, reasons,
                                                                rest, thr, follow)
        elif approximate:
            recompute |= ann_reach.reached_by_pools(job, frozen, state, prev, ~same, reasons, rest, thr)
        else:
            recompute |= reached_by_fixed_score(job, frozen, state, prev, stored, ~same, reasons, rest, thr)
    plan = Plan("incremental", recompute, reasons, previous_rows=prev, same=same)
    renumber = np.full(len(old_ids) + 1, -1, dtype=np.int64)
    renumber[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
    kept = np.flatnonzero(~recompute)
    stored = kept[[int(i) not in frozen.followed for i in kept]] if len(kept) else kept
    old_rows = state["rows"][prev[stored]]  # each stored list's links, taken from the arrays all at once
    links = {}
    for i, rows, new_rows, scores, pins in zip(stored.tolist(), (old_rows >= 0).tolist(),
                                               renumber[np.maximum(old_rows, 0)].tolist(),
                                               state["scores"][prev[stored]].tolist(),
                                               state["pinned"][prev[stored]].tolist()):
        links[i] = [Link(r, s, pin) for valid, r, s, pin in zip(rows, new_rows, scores, pins) if valid]
    for i in kept.tolist():  # in row order, as the lists come
        plan.kept[i] = frozen.followed[i] if i in frozen.followed else links[i]
    return plan, frozen


def thresholds(state: dict, prev: np.ndarray, k: int, min_score: float | None) -> np.ndarray:
    """Per row: the score a candidate must reach to enter its stored list (NaN for rows with no stored list)."""
    rows, scores, pinned = (state[name][np.where(prev >= 0, prev, 0)] for name in ("rows", "scores", "pinned"))
    ranked = np.where((rows >= 0) & ~pinned & ~np.isnan(scores), scores, np.inf)
    full = (rows >= 0).sum(axis=1) >= k
    last = ranked.min(axis=1)  # +inf when the list is all pins
    floor = -np.inf if min_score is None else min_score
    return np.where(prev >= 0, np.where(full, last, floor), np.nan)


def reached_by_fixed_score(job, frozen: Frozen, state: dict, prev: np.ndarray, stored: np.ndarray,
                           moved: np.ndarray, reasons: dict, rest: np.ndarray, thr: np.ndarray | None,
                           block: int = 256) -> np.ndarray:
    """R3-R5 of the module docstring for the rows `rest` (not already recomputed; `thr`: their stored lists'
    entry scores, `thresholds`); raises their pool bounds by what entered. `moved` marks new and changed rows
    (current numbering)."""
    policy, ranker = job.policy, job.ranker()
    out = np.zeros(len(prev), dtype=bool)
    if not len(rest):
        return out
    parts = {"dense": True, **{part: ranker.uses(part) for part in ROW_PARTS}}
    weights = {p: ranker.weights[p] for p, used in parts.items() if used}
    norm = sum(weights.values())
    bonus = policy.links.bonus_bound
    vr = job.vectors[rest]
    mean = vr @ frozen.mean_vector
    std = np.sqrt(np.maximum(np.einsum("qd,qd->q", vr @ frozen.second_moment, vr) - mean ** 2, 0.0))
    stats = {"dense": (mean, std)}
    for part in ROW_PARTS:
        if parts[part]:
            table = frozen.stats[part][rest]
            stats[part] = (table[:, 0], table[:, 1])

    def z(part, raw):
        m, s = stats[part]
        s = np.where(s > 1e-12, s, 1.0)
        return (raw - (m if np.ndim(raw) == 1 else m[:, None])) / (s if np.ndim(raw) == 1 else s[:, None])

    cols = np.flatnonzero(moved)
    entered = {b: frozen.bounds[b][rest].copy() for b in POOL_PARTS}
    r3 = np.zeros(len(rest), dtype=bool)
    lex = job.lexical
    for start in range(0, len(cols), block):
        c = cols[start:start + block]
        raw = {"dense": vr @ job.vectors[c].T}
        if parts["lexical"]:
            raw["lexical"] = (lex.tfidf[rest] @ lex.tfidf[c].T).toarray()
        if parts["mention"]:
            raw["mention"] = (lex.mentions[rest][:, c] + lex.mentions[c][:, rest].T).toarray()
        if parts["window"]:  # symmetric: the changed articles' own rows, read for the kept lists
            raw["window"] = ranker.windows.rows(c)[:, rest].T
        score = sum(w * z(p, raw[p]) for p, w in weights.items()) / norm + bonus
        mine = rest[:, None] == c[None, :]
        r3 |= ((score >= thr[:, None] - EPS) & ~mine).any(axis=1)
        for b in ("dense", "lexical", "window", "mention"):  # mention: a new cut is at most the old one or what entered
            if raw.get(b) is not None:
                entered[b] = np.fmax(entered[b], np.where(mine, -np.inf, raw[b]).max(axis=1))
    if parts["lexical"]:  # a pool from the lists' heads: its outsiders are those of the new retrieval (head_pools)
        heads = head_pools.HeadPools(job, frozen, rest)
        for j, (_, _, bound, _) in heads.of(np.flatnonzero(heads.direct)).items():
            entered["lexical"][j] = max(entered["lexical"][j], bound)
    lasts = None
    if parts["window"]:  # two-stage: the window outsider bound rises with what came nearer (window_reach)
        from .window_reach import ChangedWindows

        lasts, grown = ChangedWindows(ranker.windows, rest, cols).raised(frozen.windows, len(ranker.windows.codes))
        entered["window"] = np.fmax(entered["window"], grown)
    # R5: an article outside every pool scores at most this (pool parts at their boundary)
    outside = sum(w * z(p, entered[POOL_PARTS[p]] if p in POOL_PARTS else np.zeros(len(rest)))
                  for p, w in weights.items()) / norm + bonus
    unknown = np.isnan(thr) | np.isnan(outside) | np.isnan(entered["dense"])
    r5 = (outside >= thr - EPS) | unknown
    r4 = duplicates(frozen, rest)  # R4: the collapse (copy_reach)
    for name, hit in (("a changed article reaches its threshold", r3), ("near-duplicates", r4 & ~r3),
                      ("an outsider could reach its threshold", r5 & ~r3 & ~r4)):
        reasons[name] = int(hit.sum())
    out[rest] = r3 | r4 | r5
    keep = ~out[rest]
    frozen.keep_bounds(rest[keep], {b: entered[b][keep] for b in POOL_PARTS},
                       [lasts[j] for j in np.flatnonzero(keep)] if lasts is not None else None)
    return out


def compute_links(job, ids: list[str], signatures: list[str], state_path: Path, key: str,
                  overrides: list[dict], *, progress: bool = False, block: int = 256):
    """(links of every row, plan, frozen): only the planned rows are ranked; the others keep their stored lists."""
    from ..common.progress import progress_bar
    from .relatedlists import link_rows

    state = load_state(state_path)
    decided, frozen = plan(job, ids, signatures, state, key, overrides)
    frozen.windows.key = window_reach.search_key(job.ranker())  # kept with the lists (window_record.Record)
    if frozen.copies is None and job.policy.duplicates.threshold < 1.0:  # a full run: the whole copy graph,
        frozen.copies = CopyRecord(job)  # read from each list's candidates as it is ranked (copy_reach)
    job.use_frozen(frozen)
    rows = np.flatnonzero(decided.recompute)
    computed: dict[int, list] = {}
    with progress_bar(total=len(rows), desc="related lists", unit="article", enabled=progress) as bar:
        for start in range(0, len(rows), block):
            part = rows[start:start + block]
            computed.update(zip(part.tolist(), link_rows(job, part)))
            bar.update(len(part))
    links = [computed[i] if i in computed else decided.kept[i] for i in range(len(ids))]
    decided.link_arrays = link_arrays(links, len(ids), job.policy.links.k)  # kept in the state, compared here
    if decided.kind == "incremental" and state.get("token"):
        decided.unchanged = unchanged_rows(state, decided.previous_rows, decided.same, decided.link_arrays, links)
        decided.state_token, decided.previous_count = state["token"], len(state["ids"])
    return links, decided, frozen
