"""A cache of prepared articles keyed by the hash of their raw input, so unchanged input skips the clean-up.

Cleaning (ftfy, markup stripping, excerpts) is most of the cost of reading a corpus. Before cleaning, each raw
input unit (a JSONL line, or a whole article file) is hashed together with the file's relative path and a
digest of the ingest code itself; when that hash was seen at the last run, the prepared articles stored then are
used as they are. Stored as JSON in SQLite (never pickle), committed in one transaction per read, and pruned
to the keys of the last read, so the cache follows the corpus and a killed run loses nothing that was stored.

    with PreparedCache(index_dir / "cache" / "prepared.sqlite") as cache:
        corpus = read_corpus("content/", cache=cache)
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from .article import Article
from ..common.sqlitedb import connect, select_in

SCHEMA = """
CREATE TABLE IF NOT EXISTS prepared (
    key TEXT PRIMARY KEY,
    articles TEXT NOT NULL
) WITHOUT ROWID;
"""


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of the code that turns raw input into articles (every module of the ingest stage): changing it
    invalidates every entry."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def raw_key(rel: str, raw: bytes | str) -> str:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    digest = hashlib.sha256(code_version().encode())
    digest.update(rel.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(data)
    return digest.hexdigest()


class PreparedCache:
    """``raw input hash -> [Article]`` in one SQLite file (WAL)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = connect(self.path, SCHEMA)
        self.hits = 0
        self.misses = 0
        self._pending: dict[str, str] = {}
        self._seen: set[str] = set()

    def get_many(self, keys: Iterable[str]) -> dict[str, list[Article]]:
        wanted = list(dict.fromkeys(keys))
        self._seen.update(wanted)
        found = lookup(self.db, wanted)
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put(self, key: str, articles: list[Article]) -> None:
        self._seen.add(key)
        self._pending[key] = json.dumps([a.to_dict() for a in articles], ensure_ascii=False)

    def absorb(self, shard: "ShardCache") -> None:
        """Take over what a worker's ShardCache looked up and prepared, as if this cache had been used."""
        self._seen.update(shard.seen)
        self._pending.update(shard.pending)
        self.hits += shard.hits
        self.misses += shard.misses

    def commit(self, prune: bool = True) -> None:
        """Store what was prepared in this read; with prune, forget entries this read did not use."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO prepared VALUES (?, ?)", list(self._pending.items()))
            if prune:
                self.db.execute("CREATE TEMP TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY)")
                self.db.execute("DELETE FROM seen")
                self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(k,) for k in self._seen])
                self.db.execute("DELETE FROM prepared WHERE key NOT IN (SELECT key FROM seen)")
        self._pending.clear()

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM prepared").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "PreparedCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def lookup(db, keys: list[str]) -> dict[str, list[Article]]:
    found: dict[str, list[Article]] = {}
    for key, blob in select_in(db, "SELECT key, articles FROM prepared WHERE key IN ({marks})", keys):
        found[key] = [Article.from_dict(d) for d in json.loads(blob)]
    return found


class ShardCache:
    """The cache as a worker reading one shard of the corpus uses it (recommender.ingest.shards): lookups in the
    driver's cache file opened read-only when the worker can reach it (a local Ray instance, a shared
    filesystem; else every input is prepared again, with the same result), and the keys looked up and the
    articles prepared kept for the driver's PreparedCache to take over (`PreparedCache.absorb`). Plain data, so
    it travels back from a Ray task."""

    def __init__(self, path: str | None):
        self.seen: list[str] = []
        self.pending: dict[str, str] = {}
        self.hits = 0
        self.misses = 0
        self._db = None
        if path and Path(path).exists():
            import sqlite3

            try:
                self._db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            except sqlite3.Error:
                self._db = None

    def get_many(self, keys: Iterable[str]) -> dict[str, list[Article]]:
        wanted = list(dict.fromkeys(keys))
        self.seen.extend(wanted)
        found = lookup(self._db, wanted) if self._db is not None else {}
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put(self, key: str, articles: list[Article]) -> None:
        self.pending[key] = json.dumps([a.to_dict() for a in articles], ensure_ascii=False)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
