"""What an index holds, article by article: ids, titles, URLs and dates, so a user can find what to ask for.

    from recommender.store.catalog import list_articles
    for info in list_articles("demo-index", match="sourdough", since="2024-01-01", limit=20):
        print(info.id, info.title, info.url, info.published)

Only the manifest and the metadata database are read (the metadata file's checksum checked as `Index.open`
does): no vector index, no model.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from pathlib import Path

from ..common.errors import InputError
from .manifest import IndexProblem, read_manifest, verify_files
from .metadata import ArticleInfo, MetadataStore

ORDERS = {"index": "row", "id": "id", "title": "title COLLATE NOCASE, row",
          "date": "published IS NULL, published DESC, row"}  # date: newest first, undated last


def parse_since(text: str) -> str:
    """A YYYY-MM-DD (or YYYY-MM, YYYY) lower bound, checked; InputError with a one-line message otherwise."""
    text = text.strip()
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", text):
        raise InputError(f"--since {text!r}: expected a date as YYYY-MM-DD, YYYY-MM or YYYY")
    full = (text + "-01-01")[:10] if len(text) < 10 else text
    try:
        date.fromisoformat(full)
    except ValueError:
        raise InputError(f"--since {text!r}: not a valid date") from None
    return full


def list_articles(index_dir: str | Path, *, match: str | None = None, since: str | None = None,
                  kind: str | None = None, source: str | None = None, order: str = "index",
                  limit: int | None = None) -> list[ArticleInfo]:
    """The articles of an index, filtered: `match` (case-insensitive) in the id, title or URL; published on or
    after `since` (undated articles are left out then); of one `kind` (news, blog, text, jsonl, related) or
    `source`; ordered by `order` (index, id, title, date) and cut to `limit`."""
    if order not in ORDERS:
        raise InputError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    folder = Path(index_dir)
    manifest = read_manifest(folder)
    entry = manifest.files.get("metadata")
    if entry is None:
        raise IndexProblem(f"{folder}: the manifest names no metadata file; rebuild the index")
    verify_files(folder, dataclasses.replace(manifest, files={"metadata": entry}))
    where, args = [], []
    if match:
        where.append("(instr(lower(id), ?) OR instr(lower(title), ?) OR instr(lower(coalesce(url, '')), ?))")
        args += [match.lower()] * 3
    if since:
        where.append("published >= ?")
        args.append(parse_since(since))
    if kind:
        where.append("kind = ?")
        args.append(kind)
    if source:
        where.append("source = ?")
        args.append(source)
    with MetadataStore(folder / entry.name) as store:
        sql = (f"SELECT {store.columns} FROM articles" + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY {ORDERS[order]}" + (" LIMIT ?" if limit is not None else ""))
        rows = store.db.execute(sql, args + ([int(limit)] if limit is not None else [])).fetchall()
    return [ArticleInfo.from_row(r) for r in rows]


def count_articles(index_dir: str | Path) -> int:
    """How many articles the index holds (from its manifest)."""
    return read_manifest(Path(index_dir)).count
