"""What a night takes from the last run's outputs instead of writing it again (batch/outputs.py).

An article's output record (its id, title, URL, date and source, and each link's target id, score, pin and
target fields) is the last run's when

* its list is the one the lists state holds for it (the same targets in the same order, the same scores and pins:
  a list the incremental plan kept is, by construction; one ranked or made again may be), and
* neither the article nor any target changed: their signatures (incremental.signature: every field of the
  article and its content hash) are the state's.

Then its line of `related.jsonl` and its rows of `related.sqlite` are copied from the last run's files rather than
made again: on a 1% MDN night, 12,741 of 14,592 records. This holds only when those files are the ones written
with that lists state. Every state saved carries a random token (`incremental.save_state`), the run record
carries it (`RunRecord.lists_state`), and the outputs are renamed into place with that record, the SQLite file
that holds it last; so the token of the last good run equals the state's only when they belong together
(`Reuse.of`). A run killed between the state and the outputs, or outputs from another version, fail it and are
written in full. A copied line is also checked to start with its article's id, and a file of the wrong length is
not used: written in full, as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Reuse:
    """Per row of this run: its row in the last run (`prev`, -1 for a new article) and whether its output record
    is that row's (`unchanged`); the last run's output folder and its number of records."""

    prev: np.ndarray
    unchanged: np.ndarray
    folder: Path
    old_count: int

    @classmethod
    def of(cls, plan, previous_run: dict | None, folder: Path) -> "Reuse | None":
        """The reuse a plan allows (incremental.Plan with its `unchanged` rows), when the last good run wrote
        the outputs with the lists state the plan read; else None."""
        if plan is None or plan.unchanged is None or not plan.state_token or not previous_run or \
                previous_run.get("lists_state") != plan.state_token:
            return None
        return cls(plan.previous_rows, plan.unchanged, folder, plan.previous_count)


def unchanged_rows(state: dict, prev: np.ndarray, same: np.ndarray, arrays: tuple, links: list) -> np.ndarray:
    """Per row (the module docstring): whether its list (`arrays`: link_arrays of `links`) is the state's and the
    signatures of it and its targets are too; prev: each row's row in the state (-1: new), same: its signature is
    the state's (incremental.plan made both)."""
    rows, scores, pinned = arrays
    k = rows.shape[1]
    known = prev >= 0
    at = np.where(known, prev, 0)
    old_rows = state["rows"][at].astype(np.int64)
    renumber = np.full(len(state["ids"]) + 1, -1, dtype=np.int64)  # index -1: the padding slot
    renumber[prev[known]] = np.flatnonzero(known)
    old_targets = np.where(old_rows >= 0, renumber[old_rows], -2)  # a removed target: -1, never a row
    old_scores = state["scores"][at]
    equal = (old_targets == np.where(rows >= 0, rows, -2)).all(axis=1)
    equal &= ((old_scores == scores) | (np.isnan(old_scores) & np.isnan(scores))).all(axis=1)
    equal &= (state["pinned"][at] == pinned).all(axis=1)
    targets_same = np.where(rows >= 0, same[np.maximum(rows, 0)], True).all(axis=1)
    longer = np.fromiter((len(chosen) > k for chosen in links), dtype=bool, count=len(links))
    return known & same & equal & targets_same & ~longer


def link_arrays(links, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each list's first k links as arrays: target rows (-1 padded), scores (NaN padded) and pins."""
    rows = np.full((n, k), -1, dtype=np.int32)
    scores = np.full((n, k), np.nan)
    pinned = np.zeros((n, k), dtype=bool)
    for i, chosen in enumerate(links):
        for j, link in enumerate(chosen[:k]):
            rows[i, j], scores[i, j], pinned[i, j] = link.row, link.score, link.pinned
    return rows, scores, pinned


def jsonl_lines(reuse: Reuse | None, name: str) -> list[bytes] | None:
    """The last run's lines of `name` (one a record), when there is one a record; else None."""
    if reuse is None:
        return None
    try:
        lines = (reuse.folder / name).read_bytes().split(b"\n")
    except OSError:
        return None
    if lines and lines[-1] == b"":
        lines.pop()
    return lines if len(lines) == reuse.old_count else None


def write_jsonl(path: Path, items, reuse: Reuse | None, name: str) -> None:
    """related.jsonl: each unchanged record's line copied from the last run's file, the others encoded."""
    lines = jsonl_lines(reuse, name)
    with open(path, "wb") as fh:
        for i, item in enumerate(items):
            if lines is not None and reuse.unchanged[i]:
                line = lines[reuse.prev[i]]
                if line.startswith(b'{"id": ' + json.dumps(item.id, ensure_ascii=False).encode() + b","):
                    fh.write(line + b"\n")
                    continue
                log.warning("%s: line %d is not %s's: written in full", name, reuse.prev[i] + 1, item.id)
                lines = None
            fh.write((json.dumps(item.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))


def patch_sqlite(path: Path, items, reuse: Reuse | None, previous: Path, insert) -> bool:
    """related.sqlite as a copy of the last run's with the records that changed replaced (`insert(db, items)`
    writes records); False when that cannot be done (then the caller writes it in full)."""
    if reuse is None or not previous.exists():
        return False
    shutil.copyfile(previous, path)
    changed = [item for item, same in zip(items, reuse.unchanged.tolist()) if not same]
    current = {item.id for item in items}
    db = sqlite3.connect(path)
    try:
        old = [article_id for (article_id,) in db.execute("SELECT id FROM articles")]
        if len(old) != reuse.old_count:
            return False
        gone = [(article_id,) for article_id in old if article_id not in current] + [(i.id,) for i in changed]
        db.executemany("DELETE FROM articles WHERE id = ?", gone)
        db.executemany("DELETE FROM related WHERE article_id = ?", gone)
        insert(db, changed)
        db.commit()
        return True
    except sqlite3.DatabaseError as exc:
        log.warning("%s: not patched (%s): written in full", previous, exc)
        return False
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.close()
