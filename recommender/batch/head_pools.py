"""The lexical pools the posting lists' heads make, in the nightly reach.

A query whose terms' postings pass rank.candidates.EXACT_POSTINGS gets its lexical candidates from the heads of
impact-ordered posting lists (store.lextopk.ImpactTopK): the best documents by the sums of the postings read, not
the exact top of its row. The reach's follow of a stored pool (pool_follow: the new pool is the top of the old
members, the changed articles and outsiders no better than the old lowest) holds for an exact top only: a head
pool's outsiders may score above its lowest member, and a changed article's postings entering a head change which
postings the read takes. Until 2026-12-07 the reach followed head pools as exact tops, and at 60,000 articles (96%
of queries over heads) a 1% night differed from a full recomputation in 15 lists (docs/scale.md).

So the lexical pool of a kept list whose pool comes from heads now, or came from heads when it was stored (the
lists state keeps each row's `lexical_heads`), is made again exactly as the ranking makes it (`HeadPools`): the
same retrieval over the new index, the same depth and recorded rows after it, the same values and bound. It is
then that list's new pool, exactly; its old one is the stored record.

A pool retrieved again costs about 1 ms at 60,000 articles (the heads' read, 65,536 postings), so the pools are
retrieved on every core (`RETRIEVERS` threads: the compiled read releases the GIL, its scratch arrays are each
thread's own), and under the learned reach in the background from the start of its pool records (`ahead`), while
the main thread reads the window side's. Telling which head pools a night cannot have changed was tried
(2026-12-07): a pool keeps its read only when no changed posting, old or new, sits in the heads it reads; with 1%
of 60,000 articles changed, a read of 65,536 postings holds about 650 of theirs, and not one of 56,783 head pools
qualified.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..rank.ranking import POOL_MORE

RETRIEVERS = os.cpu_count() or 1  # threads retrieving head pools at once
CHUNK = 64  # pools a thread retrieves at a time


def stored_heads(state: dict, prev: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Each current row's `lexical_heads` as the lists state kept it (False for a row the state has no list of)."""
    out = np.zeros(len(prev), dtype=bool)
    out[same] = np.asarray(state["lexical_heads"], dtype=bool)[prev[same]]
    return out


def current_heads(job) -> np.ndarray:
    """Whether each row's lexical pool comes from the heads over the job's index (all False without the lexical
    part), for the lists state."""
    ranker = job.ranker()
    if not ranker.uses("lexical"):
        return np.zeros(job.count, dtype=bool)
    return ranker.lexical_stage().heads_made()


class HeadPools:
    """The lexical pools of the kept rows `rest` that come from heads, now or when stored, made again as the
    ranking makes them: `of(positions)`, position -> (rows int64, values float32, bound, what follows it or None),
    each the record the ranking would keep (the query itself at +inf)."""

    def __init__(self, job, frozen, rest: np.ndarray, ahead: bool = False):
        ranker = job.ranker()
        self.stage = ranker.lexical_stage()
        self.depth = ranker.ranking.candidates + 1  # the ranking's own depth (not capped at n)
        self.more = POOL_MORE if job.ann is None else 0
        self.rest = rest
        before = frozen.lexical_heads[rest] if frozen.lexical_heads is not None else np.ones(len(rest), dtype=bool)
        self.direct = before | self.stage.heads_made(rest)
        self._made: dict[int, tuple] = {}
        self._started: list = []  # (chunk, future) being retrieved on threads (`_start`), collected by `of`
        if ahead and RETRIEVERS > 1:  # in the background, while the reach's other parts run
            self._start(np.flatnonzero(self.direct).tolist())

    def _start(self, positions: list[int]) -> None:
        """Retrieve the pools of `positions` on RETRIEVERS threads (the compiled read releases the GIL, so they
        overlap the caller's work until `of` collects them), or here when they are one chunk or one core."""
        chunks = [positions[start:start + CHUNK] for start in range(0, len(positions), CHUNK)]
        if len(chunks) > 1 and RETRIEVERS > 1:
            self.stage.impact  # noqa: B018 - the heads' reader made once, before the threads share it
            pool = ThreadPoolExecutor(max_workers=RETRIEVERS, thread_name_prefix="recommender-heads")
            self._started += [(chunk, pool.submit(self._make_many, chunk)) for chunk in chunks]
            pool.shutdown(wait=False)  # its threads end once the chunks are done
        else:
            for chunk in chunks:
                self._made.update(zip(chunk, self._make_many(chunk)))

    def of(self, positions) -> dict:
        """The pools of those of `positions` whose pools come from heads (made once, on RETRIEVERS threads)."""
        wanted = [int(j) for j in positions if self.direct[int(j)]]
        self._collect()  # what started ahead, all of it
        self._start([j for j in wanted if j not in self._made])
        self._collect()
        return {j: self._made[j] for j in wanted}

    def _collect(self) -> None:
        """Wait for the pools being retrieved on threads (an error of theirs surfaces here)."""
        for chunk, future in self._started:
            self._made.update(zip(chunk, future.result()))
        self._started = []

    def _make_many(self, positions: list[int]) -> list[tuple]:
        return [self._make(int(self.rest[j])) for j in positions]

    def _make(self, q: int) -> tuple:
        """The pool of row q as ranking._two_stage retrieves and window_record.Record.record_tops keeps it."""
        terms, weights = self.stage.row(q)
        rows, scores, bound, more = self.stage.pool(terms, weights, self.depth, self.more)
        rows = np.asarray(rows, np.int64)
        values = scores if not self.stage.exact_pool(terms) else self.stage.values(terms, weights, rows)
        values = np.where(rows == q, np.inf, np.asarray(values, np.float64)).astype(np.float32)
        if more is not None:
            more = (np.asarray(more[0], np.int64), np.asarray(more[1], np.float32))
        return rows, values, float(bound), more
