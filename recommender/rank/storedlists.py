"""The last batch's related lists, kept with the index, so that a query by id reads its answer instead of
computing it.

The batch (recommender.batch.nightly) writes them into the index folder when its lists were computed as a query computes
them: every list ranked with the corpus statistics of this very index version (a full run, not an incremental one
whose statistics are frozen from an earlier version) over an exact vector index. Two files, outside the manifest
(like the overrides, they follow an index version rather than make one):

    stored-lists-TOKEN.npy   n x k records (row int32, score float64, pinned bool), row -1 after a short list
    stored-lists.json        the commit: that file's name, size and sha256, and the key of what decided the lists

The key is a digest of the index version (the sha256 of every file the manifest names, the learned ranking's
included), the policy (but its [serve] section) and this package's source code. A query answers from a stored
list only when its own key is the same, so a changed index, policy or code falls back to computing; so does a
policy whose links depend on the clock (`max_age_days`). A stored answer carries no per-signal `parts`.

The editors' overrides are applied on top, so that a pin made after the batch is live at once without losing
every other article's stored list: the header keeps the overrides the batch ranked with; an article whose blocks
are the batch's, and whose pins are the batch's or are new where the batch had none, answers from its stored list
(new pins first, as a query puts them); any other article is computed. A query for fewer links than the batch
stored reads the first of them when that is exactly what it would compute (no diversity reordering, one pool).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..common.source import code_digest

log = logging.getLogger(__name__)

HEADER = "stored-lists.json"
FORMAT = 2  # 2: the key leaves the overrides out; the header keeps the batch's
RECORD = np.dtype([("row", "<i4"), ("score", "<f8"), ("pinned", "?")])


def answer_key(manifest, policy) -> str:
    """A digest of everything a related list depends on, but the clock and the overrides (applied on top)."""
    settings = {name: value for name, value in policy.to_dict().items() if name != "serve"}  # how it is served
    blob = json.dumps({"format": FORMAT, "code": code_digest(), "count": manifest.count,
                       "files": {role: entry.sha256 for role, entry in manifest.files.items()},
                       "policy": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def usable(index, policy) -> str | None:
    """Why stored lists cannot stand for what a query computes on this index and policy (None: they can)."""
    from ..store.ann import BACKENDS

    if getattr(BACKENDS.get(index.manifest.backend), "approximate", False):
        return "approximate vector index (the batch ranks with full-precision vectors)"
    if policy.links.max_age_days is not None:
        return "max_age_days makes the links depend on the time of the query"
    return None


# --- the batch's side ---------------------------------------------------------------------------------------


def keep_lists(index, policy, overrides, links, *, fresh: bool) -> str:
    """Store the batch's lists (links: every row's chosen links) for queries when they can stand for a query's
    answer; else remove any stored before. Returns what was done, for the run record."""
    why = usable(index, policy) or (None if fresh else "incremental run (statistics frozen from an earlier "
                                    "index version)")
    if why is not None:
        discard(index.folder)
        return f"not stored: {why}"
    write_lists(index.folder, answer_key(index.manifest, policy), links, policy.links.k,
                [o.to_dict() for o in overrides.items])
    return "stored"


def write_lists(folder: Path, key: str, links, k: int, overrides: list[dict]) -> None:
    """The records file under a fresh name, then the header that names it (the commit), then tidy up."""
    import secrets

    from ..common.atomic import atomic_path, atomic_write_text
    from ..store.manifest import file_entry

    records = np.zeros((len(links), k), dtype=RECORD)
    records["row"] = -1
    records["score"] = np.nan
    for i, chosen in enumerate(links):
        for j, link in enumerate(chosen[:k]):
            records[i, j] = (link.row, link.score, link.pinned)
    path = folder / f"stored-lists-{secrets.token_hex(4)}.npy"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, records, allow_pickle=False)
    entry = file_entry(path)
    atomic_write_text(folder / HEADER, json.dumps({"format": FORMAT, "key": key, "k": k, "file": entry.name,
                                                   "bytes": entry.bytes, "sha256": entry.sha256,
                                                   "mtime_ns": entry.mtime_ns, "overrides": overrides}) + "\n")
    for old in folder.glob("stored-lists-*.npy"):
        if old.name != path.name:
            old.unlink(missing_ok=True)


def discard(folder: Path) -> None:
    (folder / HEADER).unlink(missing_ok=True)
    for old in folder.glob("stored-lists-*.npy"):
        old.unlink(missing_ok=True)


# --- the query's side ---------------------------------------------------------------------------------------


def stored_links(index, row: int, policy, overrides: bool) -> list[tuple] | None:
    """(row, score, pinned, None) of each link of the stored list of `row` with the overrides as they are now
    (overrides=False: none), or None when no stored list stands for what would be computed now."""
    lists = StoredLists.open(index, policy)
    if lists is None:
        return None
    from .overrides import OverrideSet

    return lists.links(index, row, policy.links.k, index.overrides() if overrides else OverrideSet())


class StoredLists:
    """The stored lists of one index version under one policy, read once (a server keeps it per version)."""

    def __init__(self, header: dict, records: np.ndarray, policy):
        from .linking import DIVERSITY_POOL
        from .overrides import Override, OverrideSet

        self.header = header
        self.records = records
        self.k = int(header.get("k") or records.shape[1])
        self.batch_overrides = OverrideSet([Override(**o) for o in header.get("overrides") or []])
        self.sorted = policy.diversity.mmr_lambda >= 1.0  # the ranked list is in score order: a prefix stands
        self.pool = max(DIVERSITY_POOL, 3 * self.k)
        self.include_drafts = policy.links.include_drafts

    @classmethod
    def open(cls, index, policy) -> "StoredLists | None":
        """The stored lists when they stand for what this index computes under `policy` (any k), else None."""
        header = read_header(index.folder)
        if header is None or usable(index, policy) is not None:
            return None
        k = header.get("k")
        if not isinstance(k, int) or header.get("key") != answer_key(index.manifest, policy.with_links(k=k)):
            return None
        records = read_records(index.folder, header, index.manifest.count)
        return None if records is None else cls(header, records, policy)

    def stands_for(self, k: int) -> bool:
        """Whether a query for k links computes the first k of the stored lists (given the same overrides)."""
        from .linking import DIVERSITY_POOL

        return k == self.k or (k < self.k and self.sorted and max(DIVERSITY_POOL, 3 * k) == self.pool)

    def links(self, index, row: int, k: int, overrides) -> list[tuple] | None:
        """(row, score, pinned, None) of each of the k links of `row` under the OverrideSet `overrides`, or None
        when its stored list does not stand for them (k, or overrides of this article other than the batch's)."""
        if not self.stands_for(k):
            return None
        query_id = index.store.by_rows([row])[row].id
        then, now = self.batch_overrides, overrides
        if now.blocked(query_id) != then.blocked(query_id):
            return None
        pins, pinned_then = now.pinned(query_id), then.pinned(query_id)
        if pinned_then and (pins != pinned_then or k != self.k):  # a pin's score depends on the batch's k
            return None
        stored = [(int(r), float(s), bool(p)) for r, s, p in self.records[row].tolist() if r >= 0]
        if pins == pinned_then:
            return [(r, s, p, None) for r, s, p in stored[:k]]
        # new pins where the batch had none: first, in pin order, as a query puts them (linking.order_candidates)
        ranked = {r: s for r, s, _ in stored[:k]}
        pinned_rows = []
        for target in pins:
            info = index.store.by_id(target)
            if info is None or info.row == row or target in now.blocked(query_id) or (
                    info.draft and not self.include_drafts):
                continue
            if info.row not in ranked and len(stored) < k:  # maybe ranked but under the minimum: unknown score
                return None
            pinned_rows.append(info.row)
        pinned_rows = list(dict.fromkeys(pinned_rows))
        head = [(r, ranked.get(r, float("nan")), True, None) for r in pinned_rows]
        return (head + [(r, s, False, None) for r, s, _ in stored if r not in set(pinned_rows)])[:k]

def read_header(folder: Path) -> dict | None:
    try:
        header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); computing instead", folder / HEADER, exc)
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def read_records(folder: Path, header: dict, count: int) -> np.ndarray | None:
    """The records file named by the header, checked like an index file (size and modification time, re-hashed
    when either changed), memory-mapped; None (and a warning) when it is missing or does not match."""
    from ..common.atomic import sha256_file

    path = folder / str(header.get("file"))
    try:
        stat = path.stat()
        if (stat.st_size, stat.st_mtime_ns) != (header.get("bytes"), header.get("mtime_ns")) and (
                stat.st_size != header.get("bytes") or sha256_file(path) != header.get("sha256")):
            raise ValueError("does not match its checksum")
        records = np.load(path, mmap_mode="r", allow_pickle=False)
        if records.dtype != RECORD or records.ndim != 2 or records.shape[0] != count:
            raise ValueError(f"holds {records.shape} records of {records.dtype}, expected {count} rows")
    except FileNotFoundError:
        return None  # replaced by a batch in the meantime
    except (OSError, ValueError) as exc:
        log.warning("%s: stored lists refused (%s); computing instead", path, exc)
        return None
    return records
