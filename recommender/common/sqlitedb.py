"""The SQLite caches' shared plumbing: open with WAL (safe to kill), and look keys up in blocks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """A cache database (WAL, safe to kill), its folder and schema created if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db


def select_in(db: sqlite3.Connection, query: str, keys: list[str], params: tuple = ()) -> Iterable[tuple]:
    """Rows of `query` (which ends in `IN ({marks})`) for keys in blocks of 500 (SQLite's variable limit)."""
    for start in range(0, len(keys), 500):
        block = keys[start:start + 500]
        yield from db.execute(query.format(marks=",".join("?" * len(block))), [*params, *block])
