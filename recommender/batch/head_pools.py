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

A pool retrieved again costs about 1 ms at 60,000 articles, and most head pools cannot have changed: a query
reads, of each of its terms, the first r postings of the list ordered by value (r from its weights and the lists'
lengths: ImpactTopK.shares). When r is the same before and after (the same lengths where they matter, the same
terms cut short) and every changed posting of the term, old and new, is below the r-th value read, the postings
read are the same unchanged ones: the same sums, the same pool, the same bound (`HeadPools.same`; the renumbering
of kept rows keeps their order, so ties go the same way). The old postings of the changed and removed articles
are known from the index update, which keeps beside the new version each term's old list length and the largest
old value among the documents it did not keep (`lexical_changes`, tied to the old lexical file by its checksum);
a night whose lists state was made from another version retrieves every head pool again.
"""

from __future__ import annotations

import numpy as np

from ..rank.ranking import POOL_MORE

CHANGES_FILE = "lexical-changes-{token}.npz"  # beside a version's lexical index: what the update replaced


def lexical_changes(old, old_ids: list[str], new, ids: list[str]) -> dict[str, np.ndarray]:
    """What a night needs of the lexical index an update replaced (`old`: its ids, by row) for the head pools of
    the new one (`new`): each term's old postings count, and the largest old value of the term among the
    documents not kept (changed or removed; 0 when none)."""
    tfidf = old.tfidf
    terms = tfidf.shape[1]
    row_of = {article_id: r for r, article_id in enumerate(ids)}
    at = np.fromiter((row_of.get(article_id, -1) for article_id in old_ids), dtype=np.int64, count=len(old_ids))
    kept = at >= 0
    kept[kept] = (np.asarray(old.doc_hashes)[kept] == np.asarray(new.doc_hashes)[at[kept]]).all(axis=1)
    gone = tfidf[np.flatnonzero(~kept)]
    changed_max = np.zeros(terms, dtype=np.float32)
    np.maximum.at(changed_max, gone.indices, gone.data.astype(np.float32))
    return {"lengths": np.bincount(tfidf.indices, minlength=terms).astype(np.int64), "changed_max": changed_max}


def lexical_checksum(data) -> str | None:
    """The checksum of an index version's lexical file (rank.indexdata.IndexData), None without one."""
    entry = data.manifest.files.get("lexical")
    return entry.sha256 if entry is not None else None


def changes_of(data) -> tuple | None:
    """(checksum of the lexical file the index update replaced, its lexical_changes arrays) of an index version
    (rank.indexdata.IndexData), or None (a full fit, or a version from before them)."""
    entry, base = data.manifest.files.get("lexical_changes"), data.manifest.stats.get("lexical_changes_from")
    if entry is None or base is None:
        return None
    try:
        with np.load(data.folder / entry.name, allow_pickle=False) as arrays:
            return base, {name: arrays[name] for name in ("lengths", "changed_max")}
    except (OSError, ValueError, KeyError):  # unreadable: every head pool is retrieved again
        return None


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
    """The lexical pools of the kept rows `rest` that come from heads, now or when stored (`direct`): `of(positions)`,
    position -> (rows int64, values float32, bound, what follows it or None), each the record the ranking would
    keep (the query itself at +inf): the stored one where the night cannot have changed it (`same`), else
    retrieved again (`retrieve`). moved: the new and changed rows."""

    def __init__(self, job, frozen, rest: np.ndarray, moved: np.ndarray):
        ranker = job.ranker()
        self.stage = ranker.lexical_stage()
        self.depth = ranker.ranking.candidates + 1  # the ranking's own depth (not capped at n)
        self.more = POOL_MORE if job.ann is None else 0
        self.rest, self.frozen = rest, frozen
        now = self.stage.heads_made(rest)
        before = frozen.lexical_heads[rest] if frozen.lexical_heads is not None else np.ones(len(rest), dtype=bool)
        self.direct = before | now
        self.same = np.zeros(len(rest), dtype=bool)
        if frozen.head_changes is not None:
            both = np.flatnonzero(before & now)
            self.same[both] = self._unchanged(rest[both], frozen.head_changes, moved)
        self.retrieve = self.direct & ~self.same
        self._made: dict[int, tuple] = {}

    def of(self, positions) -> dict:
        """The pools of those of `positions` whose pools come from heads (made once)."""
        out = {}
        tops = self.frozen.windows.tops["lexical"]
        for j in positions:
            j = int(j)
            if not self.direct[j]:
                continue
            if j not in self._made:
                q = int(self.rest[j])
                stored = tops.get(q) if self.same[j] else None
                self._made[j] = self._make(q) if stored is None else \
                    (np.asarray(stored[0], np.int64), stored[1], float(self.frozen.bounds["lexical"][q]), None)
            out[j] = self._made[j]
        return out

    def _unchanged(self, qs: np.ndarray, changes: dict, moved: np.ndarray) -> np.ndarray:
        """Whether each query's head read (qs: rows whose pools come from heads before and after) takes the same
        postings as when its pool was stored (the module docstring's test)."""
        impact = self.stage.impact
        indptr = np.asarray(impact.indptr, dtype=np.int64)
        lengths, old_lengths = np.diff(indptr), changes["lengths"]
        if len(old_lengths) != len(lengths):
            return np.zeros(len(qs), dtype=bool)
        changed_max = changes["changed_max"].copy()  # and the new postings of the new and changed rows
        rows = np.flatnonzero(moved)
        if len(rows):
            tf_ptr, tf_terms, tf_values = self.stage.tfidf
            for r in rows.tolist():
                a, b = int(tf_ptr[r]), int(tf_ptr[r + 1])
                np.maximum.at(changed_max, np.asarray(tf_terms[a:b], np.int64),
                              np.asarray(tf_values[a:b], np.float32))
        out = np.zeros(len(qs), dtype=bool)
        for i, q in enumerate(qs.tolist()):
            terms, weights = self.stage.row(q)
            new, old = lengths[terms], old_lengths[terms]
            read = impact.shares(weights, new)
            if not np.array_equal(read, impact.shares(weights, old)) or \
                    not np.array_equal(read < new, read < old) or (read < 1).any():
                continue
            last = np.asarray(impact.data[indptr[terms] + read - 1], dtype=np.float32)  # the r-th value read
            out[i] = bool((changed_max[terms] < last).all())
        return out

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
