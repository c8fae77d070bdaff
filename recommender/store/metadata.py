"""Article metadata and the row <-> id map of an index, in SQLite.

Rows of the vector index are the `row` column here. The file is written once per index version and opened
read-only (immutable) by queries, so its checksum in the manifest stays valid.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..ingest.article import Article

SCHEMA = """
CREATE TABLE articles (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    url TEXT,
    published TEXT,
    source TEXT,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    topics TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    authors TEXT NOT NULL DEFAULT '[]',
    page_type TEXT,
    canonical_url TEXT,
    draft INTEGER NOT NULL DEFAULT 0,
    slug TEXT
);
CREATE INDEX articles_url ON articles(canonical_url);
CREATE TABLE curated (
    article_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    related_id TEXT NOT NULL,
    PRIMARY KEY (article_id, position)
);
"""


@dataclass(frozen=True)
class ArticleInfo:
    """What a query result shows about an article."""

    row: int
    id: str
    title: str
    excerpt: str
    url: str | None
    published: str | None
    source: str | None
    kind: str
    path: str
    hash: str
    topics: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    page_type: str | None = None
    draft: bool = False  # unpublished: never linked to unless the policy includes drafts
    slug: str | None = None  # the slug the article gave (what a site's page address may be made of)

    @classmethod
    def from_row(cls, row: Sequence) -> "ArticleInfo":
        *plain, topics, authors, page_type, draft, slug = row
        return cls(*plain, tuple(json.loads(topics or "[]")), tuple(json.loads(authors or "[]")), page_type,
                   bool(draft), slug)


# What a query reads, and what it reads instead from an index built before a column existed.
_COLUMNS = {"row": None, "id": None, "title": None, "excerpt": None, "url": None, "published": None,
            "source": None, "kind": None, "path": None, "hash": None, "topics": None, "authors": "'[]'",
            "page_type": "NULL", "draft": "0", "slug": "NULL"}


def write_metadata(path: Path, articles: Sequence[Article], hashes: Sequence[str]) -> None:
    """Write a fresh metadata database (the caller makes it atomic by writing to a temporary path)."""
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        # the rows made as they are inserted (a list of them all stayed in the process: 2 GB at 1M articles)
        db.executemany(
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ((row, a.id, a.title, a.excerpt, a.url, a.published, a.source, a.kind, a.path,
              json.dumps(a.topics, ensure_ascii=False), h, a.body, json.dumps(a.authors, ensure_ascii=False),
              a.page_type, a.canonical, int(a.draft), a.slug)
             for row, (a, h) in enumerate(zip(articles, hashes))),
        )
        db.executemany(
            "INSERT INTO curated VALUES (?,?,?)",
            ((a.id, pos, rid) for a in articles for pos, rid in enumerate(a.curated)),
        )
        db.commit()
    finally:
        db.close()


class MetadataStore:
    """Read-only access to an index's metadata database."""

    def __init__(self, path: Path):
        self.path = path
        # read-only and immutable: a server shares it between its threads (sqlite3 serialises each call)
        self.db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        names = {r[1] for r in self.db.execute("PRAGMA table_info(articles)")}
        self.column_list = [name if name in names or default is None else default
                            for name, default in _COLUMNS.items()]
        self.columns = ", ".join(self.column_list)
        # an index built before canonical URLs were stored kept the canonical form in `url`
        self.url_column = "canonical_url" if "canonical_url" in names else "url"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "MetadataStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]

    def by_id(self, article_id: str) -> ArticleInfo | None:
        row = self.db.execute(f"SELECT {self.columns} FROM articles WHERE id = ?", [article_id]).fetchone()
        return ArticleInfo.from_row(row) if row else None

    def by_url(self, url: str) -> ArticleInfo | None:
        """The article whose canonical URL is url (give it canonicalised)."""
        row = self.db.execute(f"SELECT {self.columns} FROM articles WHERE {self.url_column} = ? ORDER BY row LIMIT 1",
                              [url]).fetchone()
        return ArticleInfo.from_row(row) if row else None

    def by_rows(self, rows: Sequence[int]) -> dict[int, ArticleInfo]:
        wanted = [int(r) for r in rows if r >= 0]
        found: dict[int, ArticleInfo] = {}
        for start in range(0, len(wanted), 500):
            block = wanted[start:start + 500]
            marks = ",".join("?" * len(block))
            for row in self.db.execute(f"SELECT {self.columns} FROM articles WHERE row IN ({marks})", block):
                found[row[0]] = ArticleInfo.from_row(row)
        return found

    def all(self, *, texts: bool = True) -> list[ArticleInfo]:
        """Every article's info in row order; texts=False: without the excerpt and the hash (empty: less memory)."""
        columns = self.columns if texts else ", ".join("''" if column in ("excerpt", "hash") else column
                                                        for column in self.column_list)
        return [ArticleInfo.from_row(r) for r in self.db.execute(f"SELECT {columns} FROM articles ORDER BY row")]

    def urls(self) -> list[str | None]:
        """Each article's URL as it gave it, in row order."""
        return self._column("url")

    def _column(self, name: str) -> list:
        """One column of every article, in row order (name: a column of the schema, never input)."""
        return [r[0] for r in self.db.execute(f"SELECT {name} FROM articles ORDER BY row")]

    def topics(self) -> list[list[str]]:
        """Each article's topics (tags, categories) in row order."""
        return [json.loads(r[0] or "[]") for r in self.db.execute("SELECT topics FROM articles ORDER BY row")]

    def field_counts(self) -> dict[str, int]:
        """How many articles have each optional field (what `info` shows)."""
        counts = {"url": 0, "published": 0, "source": 0, "topics": 0, "authors": 0, "page_type": 0, "draft": 0}
        for info in self.all():
            for name in counts:
                counts[name] += bool(getattr(info, name))
        return counts

    def ids(self) -> list[str]:
        return self._column("id")

    def titles(self) -> list[str]:
        return self._column("title")

    def hashes(self) -> list[tuple[str, str]]:
        """(id, content hash) of every article in row order: what an incremental rebuild compares against."""
        return [tuple(r) for r in self.db.execute("SELECT id, hash FROM articles ORDER BY row")]

    def body(self, row: int) -> str:
        found = self.db.execute("SELECT body FROM articles WHERE row = ?", [int(row)]).fetchone()
        return found[0] if found else ""

    def texts(self) -> list[tuple[str, str, str]]:
        """(title, excerpt, body) of every article in row order: what lexical rankers and explanations read."""
        return [tuple(r) for r in self.db.execute("SELECT title, excerpt, body FROM articles ORDER BY row")]

    def curated_count(self) -> int:
        """How many articles have a curated related list."""
        return int(self.db.execute("SELECT COUNT(DISTINCT article_id) FROM curated").fetchone()[0])

    def curated(self) -> dict[str, list[str]]:
        """Hand-curated related lists kept by ingest: article id -> related ids, in order."""
        out: dict[str, list[str]] = {}
        for article_id, related_id in self.db.execute(
            "SELECT article_id, related_id FROM curated ORDER BY article_id, position"
        ):
            out.setdefault(article_id, []).append(related_id)
        return out


class StoredTexts:
    """(title, excerpt, body) of each article of a metadata database, in row order, read from it when wanted (a
    sequence: len, iteration, an item or a slice): what a build reads back once it has written the metadata,
    instead of holding every article's text (at 1M articles, GBs)."""

    def __init__(self, path: Path):
        self.path = path
        self.db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        self.count = int(self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        yield from self.db.execute("SELECT title, excerpt, body FROM articles ORDER BY row")

    def __getitem__(self, item):
        if isinstance(item, slice):
            start, stop, step = item.indices(self.count)
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return list(self.db.execute("SELECT title, excerpt, body FROM articles WHERE row >= ? AND row < ? "
                                        "ORDER BY row", [start, stop]))
        row = item + self.count if item < 0 else item
        found = self.db.execute("SELECT title, excerpt, body FROM articles WHERE row = ?", [int(row)]).fetchone()
        if found is None:
            raise IndexError(item)
        return found
