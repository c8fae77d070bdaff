"""JSONL input: one article a line, each line judged on its own (a bad line is a Problem, the others are read)."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

from .article import Article, Problem
from .fields import as_list, author_list, id_url, is_draft, own_url, page_type, published_date, tag_list
from .filebytes import BOMS, decode_text, read_bytes
from .guard import IngestError, per_input
from .text import (CONTROL_CHARS, canonical_url, clean_body, clean_field, first_sentence, lead_paragraph,
                   no_lone_surrogates, url_to_id)

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a line that may hold a lone surrogate (most hold none)
MAX_ID_CHARS = 2048  # a longer id is refused: every list linking to the article would carry it


def jsonl_lines(data: bytes, rel: str, problems: list[Problem], first_line: int = 1,
                at_start: bool = True) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line. Each line is judged on its own: one that is not UTF-8 (or
    holds a NUL byte) is a Problem, the others are read. A file with a UTF-16/32 byte-order mark is decoded whole.
    Lines end at LF only: U+2028 and the other separators `str.splitlines` knows may sit inside JSON strings.
    first_line, at_start: for a part of a file (whole lines from line first_line on; only the part at the start
    of the file can hold a byte-order mark)."""
    if at_start and any(data.startswith(bom) for bom, _ in BOMS):
        raw = [line.encode() for line in decode_text(data).split("\n")]
    else:
        raw = (data.removeprefix(codecs.BOM_UTF8) if at_start else data).split(b"\n")
    lines = []
    for lineno, line in enumerate(raw, start=first_line):
        if not line.strip():
            continue
        if b"\x00" in line:
            problems.append(Problem(rel, "NUL bytes in the line (binary data); line skipped", line=lineno))
            continue
        try:
            lines.append((lineno, line.decode("utf-8").rstrip("\r")))
        except UnicodeDecodeError as exc:
            problems.append(Problem(rel, f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})",
                                    line=lineno))
    return lines


def read_jsonl(path: Path, rel: str, cache=None) -> tuple[list[Article], list[Problem]]:
    """The articles of a JSONL file, a line each, and the problems of its lines (cached by line when a cache is
    given: a line read with a warning is parsed again each time, so its message stays exact)."""
    articles, undecoded, problems = read_jsonl_part(read_bytes(path), rel, cache)
    problems = undecoded + problems
    if not articles and not problems:
        problems.append(Problem(rel, NO_ARTICLES))
    return articles, problems


NO_ARTICLES = "no articles in JSONL file"


def read_jsonl_part(data: bytes, rel: str, cache=None, first_line: int = 1,
                    at_start: bool = True) -> tuple[list[Article], list[Problem], list[Problem]]:
    """The articles of whole JSONL lines (a file, or a part of one from line first_line on), the problems of
    lines that are not text, and those of the lines read (a file reports the first before the second)."""
    articles: list[Article] = []
    undecoded: list[Problem] = []
    problems: list[Problem] = []
    lines = jsonl_lines(data, rel, undecoded, first_line, at_start)
    keys: list[str] = []
    hits: dict = {}
    if cache is not None:
        from .prepared_cache import raw_key

        keys = [raw_key(rel, line) for _, line in lines]
        hits = cache.get_many(keys)
    for i, (lineno, line) in enumerate(lines):
        if keys and keys[i] in hits:
            articles.extend(hits[keys[i]])
            continue
        dates: list[str] = []
        with per_input(rel, problems, line=lineno):
            article = parse_jsonl_record(line, rel, dates)
            articles.append(article)
            if keys and not dates:
                cache.put(keys[i], [article])
        problems.extend(Problem(rel, w, line=lineno, kept=True) for w in dates)
    return articles, undecoded, problems


def parse_jsonl_record(line: str, rel: str, dates: list[str] | None = None) -> Article:
    """One JSONL line: ``{"id", "title", "text", "excerpt"?, "url"?, "published"?, "source"?, "related"?}``.
    dates: receives a warning for each date field that holds no date, and each related item that is no id."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise IngestError("JSON nested too deeply to read") from None
    if not isinstance(record, dict):
        raise IngestError("line is not a JSON object")
    if _SURROGATE_ESCAPE.search(line):
        record = no_lone_surrogates(record)
    url = own_url(record)
    raw_id = record.get("id")
    if raw_id is None or str(raw_id).strip() == "":
        if not url or not canonical_url(url):
            raise IngestError("no id and no url")
        raw_id = url_to_id(id_url(record) or url)
    if len(str(raw_id)) > MAX_ID_CHARS:
        raise IngestError(f"id longer than {MAX_ID_CHARS:,} characters")
    if CONTROL_CHARS.search(str(raw_id).strip()):  # a line end or an escape sequence: no listing could show it
        raise IngestError(f"id {str(raw_id).strip()[:80]!r} holds a control character")
    body = clean_body(str(record.get("text") or record.get("body") or ""))
    title = clean_field(record.get("title")) or first_sentence(body, max_chars=90)
    excerpt = clean_field(record.get("excerpt") or record.get("description"))
    if not excerpt and body:
        excerpt = lead_paragraph(body)
    if not title and not body:
        raise IngestError(f"article {raw_id!r} has no title and no text")
    related = related_ids(record.get("related"), dates)
    return Article(
        id=str(raw_id).strip(),
        title=title,
        excerpt=excerpt,
        body=body,
        url=url,
        published=published_date(record, dates),
        source=clean_field(record.get("source")) or None,
        topics=tag_list(record),
        authors=author_list(record),
        page_type=page_type(record),
        draft=is_draft(record),
        kind="jsonl",
        path=rel,
        slug=str(record.get("slug") or "").strip().strip("/") or None,
        curated=related,
    )


def related_ids(value: object, warnings: list[str] | None = None) -> list[str]:
    """The ids (or URLs) a line's `related` names: strings and whole numbers (one alone is a list of one). Any
    other item (null, a mapping, a list) is left out and, when `warnings` is given, named there."""
    ids = []
    for position, item in enumerate(as_list(value), start=1):
        if isinstance(item, str) or (isinstance(item, int) and not isinstance(item, bool)):
            if str(item).strip():
                ids.append(str(item))
        elif warnings is not None:
            warnings.append(f"related item {position}: {str(item)[:80]} is not an id or URL; ignored")
    return ids
