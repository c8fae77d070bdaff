"""A persistent cache of article vectors, and of each article's window vectors, keyed by model fingerprint and
content hash; and of the vector of each single text the model read (a head or a window), keyed by the text's
sha256, so that an article that changed in one place embeds only the windows whose text changed (a 1% night on
MDN whose pages gained a paragraph: 152 of their 517 texts); and each article's content hash by a digest of what
the preparation reads (`source_key`), so that a night does not split every article into windows to hash them.

The index build and the nightly batch look vectors up here before they run the model, and commit new ones in
small transactions as they go, so a run that is killed keeps what it already embedded and the next run reuses it.
Article vectors are raw float32 bytes, window vectors raw float16 bytes, one row per window, text vectors raw
float32 bytes, as the model gave them (the article vector is mixed from them: float16 would change it). Never
pickle.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np

from ..common.sqlitedb import connect, select_in

# (model, hash) -> a blob of `dim`-wide vectors: article vectors, each article's windows, single texts' vectors
SCHEMA = "".join(f"""
CREATE TABLE IF NOT EXISTS {table} (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    {column} BLOB NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;""" for table, column in (("vectors", "vector"), ("windows", "vectors"), ("texts", "vector"))) + """
CREATE TABLE IF NOT EXISTS contents (
    source TEXT NOT NULL PRIMARY KEY,
    hash TEXT NOT NULL
) WITHOUT ROWID;
"""


def text_key(text: str) -> str:
    """The key of one text the model reads: sha256 of its UTF-8 bytes (the model fingerprint is the other half)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorCache:
    """``(model fingerprint, content hash) -> float32 vector`` in one SQLite file (WAL, safe to kill)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = connect(self.path, SCHEMA)

    def _select(self, table: str, column: str, model: str, hashes: Iterable[str], dtype) -> dict:
        """hash -> (dim, flat array) of the rows of `table` for these hashes."""
        query = f"SELECT hash, dim, {column} FROM {table} WHERE model = ? AND hash IN ({{marks}})"
        return {h: (dim, np.frombuffer(blob, dtype=dtype))
                for h, dim, blob in select_in(self.db, query, list(dict.fromkeys(hashes)), (model,))}

    def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        found = self._select("vectors", "vector", model, hashes, np.float32)
        return {h: vec for h, (dim, vec) in found.items() if vec.shape == (dim,)}

    def put_many(self, model: str, items: Iterable[tuple[str, np.ndarray]],
                 windows: Iterable[tuple[str, np.ndarray]] = (), texts: Iterable[tuple[str, np.ndarray]] = ()) -> None:
        """Article vectors, and (optionally) window matrices and single texts' vectors (text_key -> float32),
        committed in one transaction."""
        rows = [(model, h, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in items]
        blocks = [(model, h, int(w.shape[1]), np.ascontiguousarray(w, dtype=np.float16).tobytes())
                  for h, w in windows]
        singles = [(model, h, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in texts]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
            self.db.executemany("INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?)", blocks)
            self.db.executemany("INSERT OR REPLACE INTO texts VALUES (?, ?, ?, ?)", singles)

    def get_contents(self, keys: Iterable[str]) -> dict[str, str]:
        """source_key -> the content hash stored for it."""
        return dict(select_in(self.db, "SELECT source, hash FROM contents WHERE source IN ({marks})",
                              list(dict.fromkeys(keys))))

    def put_contents(self, items: Iterable[tuple[str, str]]) -> None:
        """(source_key, content hash) pairs, committed in one transaction."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO contents VALUES (?, ?)", list(items))

    def get_texts(self, model: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """text_key -> float32 vector of the single texts this model embedded before."""
        found = self._select("texts", "vector", model, keys, np.float32)
        return {h: vec for h, (dim, vec) in found.items() if vec.shape == (dim,)}

    def get_windows(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """hash -> (windows x dim) float16 matrix, for the hashes that have one."""
        found = self._select("windows", "vectors", model, hashes, np.float16)
        return {h: flat.reshape(-1, dim) for h, (dim, flat) in found.items()
                if dim > 0 and flat.size and flat.size % dim == 0}

    def prune(self, model: str, keep: set[str]) -> int:
        """Drop this model's vectors whose hash is not in keep, and its single texts' vectors (a speed-up only,
        made again as articles change); returns how many article vectors went."""
        hashes = [h for (h,) in self.db.execute("SELECT hash FROM vectors WHERE model = ?", [model])]
        gone = [h for h in hashes if h not in keep]
        with self.db:
            self.db.executemany("DELETE FROM vectors WHERE model = ? AND hash = ?", [(model, h) for h in gone])
            stale = [h for (h,) in self.db.execute("SELECT hash FROM windows WHERE model = ?", [model])
                     if h not in keep]
            self.db.executemany("DELETE FROM windows WHERE model = ? AND hash = ?", [(model, h) for h in stale])
            self.db.execute("DELETE FROM texts WHERE model = ?", [model])
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
