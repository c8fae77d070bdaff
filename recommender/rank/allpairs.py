"""Embedding-only top-k neighbours of every article at once, under simple link rules: the FAISS all-pairs step
that `scripts/bench.py` measures at scale (the batch's related links come from `relatedlists`, which adds the
hybrid ranking and the policy on top of the same kind of candidates).

The search is batched (blocks of query rows against the vector index, never one query at a time). Rules are
applied to each block's candidates with array operations; a row that the rules leave short of k links is
searched again deeper, until it has k links, or the candidates run out, or they fall below the minimum score.

Rules, all optional:
* min_score: fewer links rather than weak ones (cosine below it never appears);
* exclude_same_source: no link between two articles of the same known source;
* direction: "older" links only to articles published no later than the article, "newer" only to ones no
  earlier; undated articles on either side are not filtered (nothing to compare);
* max_age_days: no link to an article published more than this many days before `as_of` (default: now);
  undated articles are kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from ..common.blocks import map_blocks_here
from ..common.progress import progress_bar
from ..store.ann import rescore
from .policy import DIRECTIONS


@dataclass(frozen=True)
class LinkRules:
    k: int = 10
    min_score: float | None = None
    exclude_same_source: bool = False
    direction: str = "any"
    max_age_days: float | None = None

    def __post_init__(self):
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {self.direction!r}")

    @property
    def filters(self) -> bool:
        return bool(self.min_score is not None or self.exclude_same_source or self.direction != "any"
                    or self.max_age_days is not None)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SourceDays:
    """Each row's source code (-1 unknown) and publication day number (NaN unknown): what the all-pairs rules read."""

    sources: np.ndarray
    days: np.ndarray

    @classmethod
    def from_lists(cls, sources: Sequence[str | None], published: Sequence[str | None]) -> "SourceDays":
        codes: dict[str, int] = {}
        source_codes = np.array([codes.setdefault(s.lower(), len(codes)) if s else -1 for s in sources],
                                dtype=np.int64)
        return cls(sources=source_codes, days=np.array([day_number(p) for p in published], dtype=np.float64))


def day_number(value: str | None) -> float:
    """Days since the epoch (fractional) for an ISO date or date-time; NaN when absent or unreadable."""
    if not value:
        return float("nan")
    text = str(value).strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text[:10])
        except ValueError:
            return float("nan")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() / 86400.0


def allowed(rules: LinkRules, facts: SourceDays | None, query_rows: np.ndarray, rows: np.ndarray,
            scores: np.ndarray, as_of_day: float) -> np.ndarray:
    """Boolean mask over a block of candidates (len(query_rows) x depth): which may be linked."""
    mask = (rows >= 0) & (rows != query_rows[:, None])
    if rules.min_score is not None:
        mask &= scores >= rules.min_score
    if facts is None:
        return mask
    safe = np.where(rows >= 0, rows, 0)
    if rules.exclude_same_source:
        mine = facts.sources[query_rows][:, None]
        mask &= ~((facts.sources[safe] == mine) & (mine >= 0))
    cand_day = facts.days[safe]
    if rules.direction != "any":
        mine = facts.days[query_rows][:, None]
        with np.errstate(invalid="ignore"):
            wrong = cand_day > mine if rules.direction == "older" else cand_day < mine
        mask &= ~wrong  # NaN comparisons are False: undated articles pass
    if rules.max_age_days is not None:
        with np.errstate(invalid="ignore"):
            mask &= ~(as_of_day - cand_day > rules.max_age_days)
    return mask


def first_allowed(mask: np.ndarray, scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k allowed candidates of each row, in their order; padded with -1 rows and NaN scores."""
    order = np.argsort(~mask, axis=1, kind="stable")[:, :k]
    picked_rows = np.take_along_axis(rows, order, axis=1)
    picked_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    ok = np.take_along_axis(mask, order, axis=1)
    picked_rows = np.where(ok, picked_rows, -1)
    picked_scores = np.where(ok, picked_scores, np.nan).astype(np.float32)
    if picked_rows.shape[1] < k:  # fewer candidates than k in the whole corpus
        pad = k - picked_rows.shape[1]
        picked_rows = np.pad(picked_rows, ((0, 0), (0, pad)), constant_values=-1)
        picked_scores = np.pad(picked_scores, ((0, 0), (0, pad)), constant_values=np.nan)
    return picked_scores, picked_rows


@dataclass
class PairsJob:
    """Everything one block of query rows needs (the `shared` of `related_block`); engines ship it to workers."""

    index: object  # anything with search(queries, depth) -> (scores, rows)
    vectors: np.ndarray
    rules: LinkRules
    facts: SourceDays | None
    as_of_day: float
    first_depth: int
    exact_rescore: bool


def related_block(job: PairsJob, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of query rows start..stop-1, each (stop - start) x k: the unit of work of every engine."""
    n, k, rules = len(job.vectors), job.rules.k, job.rules
    query_rows = np.arange(start, stop)
    out_scores = np.full((len(query_rows), k), np.nan, dtype=np.float32)
    out_rows = np.full((len(query_rows), k), -1, dtype=np.int64)
    pending = query_rows
    depth = job.first_depth
    while len(pending):
        scores, rows = job.index.search(job.vectors[pending], depth)
        if job.exact_rescore:
            scores, rows = rescore(job.vectors, pending, rows)
        mask = allowed(rules, job.facts, pending, rows, scores, job.as_of_day)
        picked_scores, picked_rows = first_allowed(mask, scores, rows, k)
        out_scores[pending - start], out_rows[pending - start] = picked_scores, picked_rows
        short = (picked_rows < 0).any(axis=1)
        if rules.min_score is not None:  # candidates below the minimum end the search for a row
            short &= scores[:, -1] >= rules.min_score
        if depth >= n or not short.any():
            break
        pending = pending[short]
        depth = min(n, depth * 4)
    return out_scores, out_rows


def all_pairs_topk(index, vectors: np.ndarray, rules: LinkRules, facts: SourceDays | None = None, *,
                   as_of: datetime | None = None, block: int = 2048, exact_rescore: bool | None = None,
                   progress: bool = False, engine=None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows), each n x k: every article's related rows, best first, self never included.

    `index` is anything with `search(queries, depth) -> (scores, rows)` and `count`; `vectors` are the
    article vectors in row order. Missing links (rules, tiny corpus) are -1 rows with NaN scores.

    With an approximate index (one whose `approximate` is true) the search fetches 3k candidates and re-scores
    them exactly against `vectors` (pass the full-precision vectors): quantisation then no longer decides the
    order of near-ties, only which candidates are fetched.

    The blocks of query rows are run by `engine` (recommender.batch.engines; default: the local engine, one after
    the other in this process); every engine gives the same result.
    """
    if exact_rescore is None:
        exact_rescore = bool(getattr(index, "approximate", False))
    n = len(vectors)
    k = rules.k
    first_depth = min(n, k + 1 if not rules.filters else 4 * k + 16)
    if exact_rescore:
        first_depth = min(n, max(first_depth, 3 * k + 1))
    job = PairsJob(index=index, vectors=vectors, rules=rules, facts=facts,
                   as_of_day=(as_of or datetime.now(timezone.utc)).timestamp() / 86400.0,
                   first_depth=first_depth, exact_rescore=exact_rescore)
    run = engine.map_blocks if engine is not None else map_blocks_here
    with progress_bar(total=n, desc="related lists", unit="article", enabled=progress) as bar:
        parts = run(related_block, job, n, block, progress=bar.update)
    if not parts:
        return np.full((0, k), np.nan, dtype=np.float32), np.full((0, k), -1, dtype=np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
