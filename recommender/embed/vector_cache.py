"""A persistent cache of article vectors keyed by model fingerprint and content hash.

The index build and the nightly batch look vectors up here before they run the model, and commit new ones in
small transactions as they go, so a run that is killed keeps what it already embedded and the next run reuses it.
Vectors are raw float32 bytes (never pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..common.sqlitedb import connect, select_in

SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;
"""


class VectorCache:
    """``(model fingerprint, content hash) -> float32 vector`` in one SQLite file (WAL, safe to kill)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = connect(self.path, SCHEMA)

    def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        query = "SELECT hash, dim, vector FROM vectors WHERE model = ? AND hash IN ({marks})"
        for h, dim, blob in select_in(self.db, query, wanted, (model,)):
            vec = np.frombuffer(blob, dtype=np.float32)
            if vec.shape == (dim,):
                found[h] = vec
        return found

    def put_many(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(model, h, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in items]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def prune(self, model: str, keep: set[str]) -> int:
        """Drop this model's vectors whose hash is not in keep; returns how many went."""
        hashes = [h for (h,) in self.db.execute("SELECT hash FROM vectors WHERE model = ?", [model])]
        gone = [h for h in hashes if h not in keep]
        with self.db:
            self.db.executemany("DELETE FROM vectors WHERE model = ? AND hash = ?", [(model, h) for h in gone])
        return len(gone)

    def count(self, model: str | None = None) -> int:
        if model is None:
            return self.db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", [model]).fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "VectorCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
