"""The nightly batch's outputs, in the forms a site reads, each replaced atomically:

* ``related.jsonl``: one article a line, ``{"id", "title", "url", "published", "source", "related": [{"id",
  "score", "title", "url", "published", "source"}, ...]}``;
* ``related.json``: ``{id: [related ids]}``;
* ``related_by_path.json``: ``{"/page/path/": [{"title", "href", "url", "path", "id", "published", "score"},
  ...]}``, keyed by the address of each article's page on the site as the policy's `[site] key` says
  (batch/pages.py; by default the path of its URL, ``/ID/`` for an article without one, Hugo's default
  permalink of ``content/ID.md``), which a Hugo or Jekyll template reads as is: see docs/site-integration.md. The batch's
  ``site_data`` copies it into the site (a Hugo ``data/`` or Jekyll ``_data/`` file), since the output folder
  also holds files (SQLite, JSONL) that Hugo refuses to find in ``data/``;
* ``related.sqlite``: tables ``articles``, ``related`` (article_id, rank, related_id, score) and ``runs`` (one
  record per batch run, the history carried over from the previous file).

Each is one entry of `SINKS` (its file name and its writer; a new output format is a writer and one entry). All
are written to temporary files first and renamed over the old ones only when all are complete, so a reader sees
yesterday's complete files or today's, never a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..common.atomic import atomic_path, atomic_write_bytes
from ..common.jsontext import dumps_indented, flat_text, scalar_text
from ..rank.results import Related
from ..rank.policy import Site
from .output_reuse import Reuse, patch_sqlite, write_jsonl
from .pages import href, page_key
from .runrecord import RunRecord

JSONL = "related.jsonl"
JSON_MAP = "related.json"
BY_PATH = "related_by_path.json"
SQLITE = "related.sqlite"

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE articles (id TEXT PRIMARY KEY, title TEXT NOT NULL, url TEXT, published TEXT, source TEXT);
CREATE TABLE related (
    article_id TEXT NOT NULL, rank INTEGER NOT NULL, related_id TEXT NOT NULL,
    score REAL,                            -- NULL for a pinned link the ranking did not find
    pinned INTEGER NOT NULL DEFAULT 0,     -- 1: an editor pinned it (see `recommender pin`)
    PRIMARY KEY (article_id, rank)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, ended TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, model TEXT, articles INTEGER, record TEXT NOT NULL
);
"""

RUNS_SCHEMA = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS runs"):]


@dataclass(frozen=True)
class ArticleLinks:
    id: str
    title: str
    url: str | None
    published: str | None
    source: str | None
    related: tuple[Related, ...]

    def to_dict(self) -> dict:
        return {
            "id": self.id, "title": self.title, "url": self.url, "published": self.published,
            "source": self.source,
            "related": [{"id": l.id, "score": None if l.score is None else round(l.score, 6), "title": l.title,
                         "url": l.url, "published": l.published, "source": l.source,
                         **({"pinned": True} if l.pinned else {})} for l in self.related],
        }


def by_path(items: Sequence[ArticleLinks], infos: Sequence, site: Site = Site()) -> tuple[dict, dict]:
    """The links keyed by the address of each article's page (what a site template looks up with the page's
    own path; `infos`: every article of the index, as batch/pages.py reads them), and counts: keys, keys made
    from ids (no URL, under the url key), articles without a page of their own (stubs under the other keys),
    and the articles left out because an earlier one has the same key (`collisions`, the first few named)."""
    keys = {i.id: page_key(i, site) for i in infos}
    hrefs = {i.id: href(i, keys[i.id], site) for i in infos}
    # a link's path: its page, or (no page: a stub) its URL's path
    paths = {i.id: keys[i.id] or (page_key(i, Site()) if i.url else None) for i in infos}
    out: dict[str, list[dict]] = {}
    owner: dict[str, str] = {}
    collided: list[str] = []
    for item in items:
        key = keys.get(item.id)
        if key is None:
            continue
        if key in out:
            collided.append(f"{key}: {item.id} (the key of {owner[key]})")
            continue
        owner[key] = item.id
        out[key] = [{"title": l.title, "href": hrefs.get(l.id), "url": l.url, "path": paths.get(l.id), "id": l.id,
                     "published": l.published, "score": None if l.score is None else round(l.score, 6),
                     **({"pinned": True} if l.pinned else {})} for l in item.related]
    counts = {"key": site.key, "keys": len(out),
              "from_ids": sum(1 for i in infos if not i.url) if site.key == "url" else 0,
              "without_page": sum(1 for i in items if keys.get(i.id) is None), "collisions": len(collided)}
    if collided:
        counts["collided"] = collided[:MAX_NAMED]
    return out, counts


MAX_NAMED = 20  # collisions named in the run record
LINK_FIELDS = ("title", "href", "url", "path", "id", "published")  # a by-path link's fields before its score
SCORE, PINNED = ',\n   "score": ', ',\n   "pinned": true'


def by_path_text(keyed: dict) -> str:
    """json.dumps(keyed, ensure_ascii=False, indent=1), character for character, for by_path's links: the
    fields a link takes from its target (all but the score) are encoded once per target (an article is linked
    from about ten lists), not once per link. Anything of another shape goes through common.jsontext."""
    fragments: dict[tuple, str] = {}
    parts = []
    plain, pinned_names = (*LINK_FIELDS, "score"), (*LINK_FIELDS, "score", "pinned")
    for key, links in keyed.items():
        rendered = []
        for link in links:
            names = tuple(link)
            score = link["score"] if names == plain or names == pinned_names else ""
            if type(score) is not float and score is not None or link.get("pinned", True) is not True:
                return dumps_indented(keyed)
            static = (link["title"], link["href"], link["url"], link["path"], link["id"], link["published"])
            head = fragments.get(static)
            if head is None:
                if any(type(value) is not str and value is not None for value in static):
                    return dumps_indented(keyed)
                head = fragments[static] = "  {\n   " + flat_text(dict(zip(LINK_FIELDS, static)), "\n   ")[1:-1]
            rendered.append(head + SCORE + scalar_text(score) + (PINNED if len(names) == 8 else "") + "\n  }")
        parts.append(scalar_text(key) + (": [\n" + ",\n".join(rendered) + "\n ]" if rendered else ": []"))
    return "{\n " + ",\n ".join(parts) + "\n}" if parts else "{}"


@dataclass
class Written:
    """What the sinks write from: the lists, their by-path form (text) and the run record; `previous`: the folder's
    last outputs (the SQLite sink carries their run history over)."""

    items: Sequence[ArticleLinks]
    by_path_text: str
    run_record: RunRecord
    previous: Path
    reuse: Reuse | None = None  # what may be copied from the last run's files (batch/output_reuse.py)


@dataclass(frozen=True)
class Sink:
    """One output of the batch: its file name and the writer that fills a temporary path with it (renamed into
    place with the others once all are written)."""

    name: str
    write: Callable[[Path, Written], None]  # (temporary path, what is written)


def _write_by_path(path: Path, out: Written) -> None:
    path.write_text(out.by_path_text, encoding="utf-8")


def _write_jsonl(path: Path, out: Written) -> None:
    write_jsonl(path, out.items, out.reuse, JSONL)


def _write_json_map(path: Path, out: Written) -> None:
    path.write_text(dumps_indented({i.id: [l.id for l in i.related] for i in out.items}) + "\n", encoding="utf-8")


def _write_sqlite_sink(path: Path, out: Written) -> None:
    path.unlink()
    if patch_sqlite(path, out.items, out.reuse, out.previous, _insert_items):
        db = sqlite3.connect(path)
        try:
            _insert_run(db, out.run_record)
            db.commit()
        finally:
            db.close()
        return
    path.unlink(missing_ok=True)
    _write_sqlite(path, out.items, previous=out.previous, run_record=out.run_record)


# the batch's outputs, written in this order (a new output format: its writer and one entry here)
SINKS = (Sink(BY_PATH, _write_by_path), Sink(JSONL, _write_jsonl), Sink(JSON_MAP, _write_json_map),
         Sink(SQLITE, _write_sqlite_sink))


def output_names() -> tuple[str, ...]:
    return tuple(sink.name for sink in SINKS)


def write_outputs(folder: Path, items: Sequence[ArticleLinks], run_record: RunRecord,
                  site_data: Path | None = None, infos: Sequence | None = None, site: Site = Site(),
                  reuse: Reuse | None = None) -> None:
    """Write every output of SINKS (and append the run record to the SQLite one), all or nothing; with site_data,
    also the by-path form there, renamed into place with the others. `infos`: the index's articles (for the
    page keys); None: the items themselves. reuse: the records that are the last run's, copied from its files
    (batch/output_reuse.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    keyed, counts = by_path(items, infos if infos is not None else items, site)
    run_record.by_path = counts
    if counts["collisions"]:
        log.warning("%d of the articles have the page key (%s) of an earlier article: left out of %s, e.g. %s",
                    counts["collisions"], site.key, BY_PATH, "; ".join(counts["collided"][:3]))
    out = Written(items, by_path_text(keyed) + "\n", run_record, folder / SQLITE, reuse)
    with contextlib.ExitStack() as stack:
        if site_data is not None:
            _write_by_path(stack.enter_context(atomic_path(site_data)), out)
        # entered last to first, so that leaving the stack renames them first to last: the SQLite file, which holds
        # the run record and its lists state's token, after every file written with that state (output_reuse)
        paths = {sink.name: stack.enter_context(atomic_path(folder / sink.name)) for sink in reversed(SINKS)}
        for sink in SINKS:
            sink.write(paths[sink.name], out)
        # leaving the stack renames the files over the old ones, one after another, only now that all are
        # complete


def remove_leftovers(folder: Path) -> None:
    """Temporary files of a run that was killed while writing (the caller holds the folder's lock)."""
    for name in output_names():
        for path in folder.glob(f".{name}.*.tmp"):
            path.unlink(missing_ok=True)


def copy_site_data(folder: Path, site_data: Path) -> None:
    """Put the by-path form of the last outputs into the site's data file, unless it is already there."""
    data = (folder / BY_PATH).read_bytes()
    if not site_data.exists() or site_data.read_bytes() != data:
        atomic_write_bytes(site_data, data)


def _write_sqlite(path: Path, items: Sequence[ArticleLinks], previous: Path, run_record: RunRecord) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        _insert_items(db, items)
        if previous.exists():
            with contextlib.suppress(sqlite3.DatabaseError):
                db.execute("ATTACH DATABASE ? AS old", [str(previous)])
                db.execute("INSERT INTO runs SELECT * FROM old.runs")
                db.commit()
                db.execute("DETACH DATABASE old")
        _insert_run(db, run_record)
        db.commit()
    finally:
        db.close()


def _insert_items(db: sqlite3.Connection, items: Sequence[ArticleLinks]) -> None:
    db.executemany("INSERT INTO articles VALUES (?,?,?,?,?)", [(i.id, i.title, i.url, i.published, i.source)
                                                               for i in items])
    db.executemany("INSERT INTO related VALUES (?,?,?,?,?)", [(i.id, rank, l.id, l.score, int(l.pinned))
                                                              for i in items for rank, l in enumerate(i.related, 1)])


def update_last_run(folder: Path, run_record: RunRecord) -> None:
    """Replace the newest run record (written with the outputs) by its final form, in one transaction."""
    with contextlib.closing(sqlite3.connect(folder / SQLITE, timeout=30)) as db:
        db.execute("UPDATE runs SET ended = ?, record = ? WHERE id = (SELECT MAX(id) FROM runs)",
                   [run_record.ended, json.dumps(run_record.to_dict(), ensure_ascii=False, sort_keys=True)])
        db.commit()


def append_run(folder: Path, run_record: RunRecord) -> bool:
    """Record a run (a failed one) in the existing SQLite output, in one transaction; False if there is none."""
    path = folder / SQLITE
    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.executescript(RUNS_SCHEMA)
        _insert_run(db, run_record)
        db.commit()
    return True


def _insert_run(db: sqlite3.Connection, record: RunRecord) -> None:
    db.execute(
        "INSERT INTO runs (started, ended, status, error, model, articles, record) VALUES (?,?,?,?,?,?,?)",
        [record.started, record.ended, record.status, record.error, record.model, record.articles,
         json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True)],
    )


def read_runs(folder: Path) -> list[dict]:
    """Every run record in the SQLite output, oldest first (as stored: JSON objects, RunRecord.to_dict)."""
    path = folder / SQLITE
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return [json.loads(r[0]) for r in db.execute("SELECT record FROM runs ORDER BY id")]


def read_jsonl(folder: Path) -> Iterator[dict]:
    with open(folder / JSONL, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def read_sqlite_links(folder: Path) -> dict[str, list[tuple[str, float]]]:
    with contextlib.closing(sqlite3.connect(f"file:{folder / SQLITE}?mode=ro", uri=True)) as db:
        out: dict[str, list[tuple[str, float]]] = {a: [] for (a,) in db.execute("SELECT id FROM articles")}
        for article_id, related_id, score in db.execute(
            "SELECT article_id, related_id, score FROM related ORDER BY article_id, rank"
        ):
            out[article_id].append((related_id, score))
        return out
