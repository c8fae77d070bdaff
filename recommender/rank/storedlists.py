"""The last batch's related lists, kept with the index, so that a query by id reads its answer instead of
computing it.

The batch (recommender.batch.nightly) writes them into the index folder when its lists were computed as a query computes
them: every list ranked with the corpus statistics of this very index version (a full run, not an incremental one
whose statistics are frozen from an earlier version) over an exact vector index. Two files, outside the manifest
(like the overrides, they follow an index version rather than make one):

    stored-lists-TOKEN.npy   n x k records (row int32, score float64, pinned bool), row -1 after a short list
    stored-lists.json        the commit: that file's name, size and sha256, and the key of what decided the lists

The key is a digest of the index version (the sha256 of every file the manifest names, the learned ranking's
included), the policy, the overrides and this package's source code. A query answers from a stored list only
when its own key is the same, so a changed index, policy, override or code falls back to computing; so does a
policy whose links depend on the clock (`max_age_days`). A stored answer carries no per-signal `parts`.
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
FORMAT = 1
RECORD = np.dtype([("row", "<i4"), ("score", "<f8"), ("pinned", "?")])


def answer_key(manifest, policy, overrides) -> str:
    """A digest of everything a related list depends on, but the clock."""
    blob = json.dumps({"format": FORMAT, "code": code_digest(), "count": manifest.count,
                       "files": {role: entry.sha256 for role, entry in manifest.files.items()},
                       "policy": policy.to_dict(), "overrides": sorted(json.dumps(o.to_dict(), sort_keys=True)
                                                                       for o in overrides.items)},
                      sort_keys=True, default=str)
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
    write_lists(index.folder, answer_key(index.manifest, policy, overrides), links, policy.links.k)
    return "stored"


def write_lists(folder: Path, key: str, links, k: int) -> None:
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
                                                   "mtime_ns": entry.mtime_ns}) + "\n")
    for old in folder.glob("stored-lists-*.npy"):
        if old.name != path.name:
            old.unlink(missing_ok=True)


def discard(folder: Path) -> None:
    (folder / HEADER).unlink(missing_ok=True)
    for old in folder.glob("stored-lists-*.npy"):
        old.unlink(missing_ok=True)


# --- the query's side ---------------------------------------------------------------------------------------


def stored_links(index, row: int, policy, overrides: bool) -> list[tuple] | None:
    """(row, score, pinned, None) of each link of the stored list of `row`, or None when no stored list stands
    for what would be computed now."""
    header = read_header(index.folder)
    if header is None or usable(index, policy) is not None:
        return None
    from .overrides import OverrideSet

    current = index.overrides() if overrides else OverrideSet()
    if header.get("key") != answer_key(index.manifest, policy, current):
        return None
    records = read_records(index.folder, header, index.manifest.count)
    if records is None:
        return None
    return [(int(r), float(s), bool(p), None) for r, s, p in records[row].tolist() if r >= 0]


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
