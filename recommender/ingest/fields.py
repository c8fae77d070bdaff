"""What an article record's metadata says, whatever its format: its URLs (the one it gave, and the one its id is
made from), publication date, provider, tags, authors and whether it is an unpublished draft.

Front matter and JSONL records are both plain mappings here; `ingest` decides which record is which article.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from .text import canonical_url, clean_field

# The URL an id is made from, in this order (unchanged since the first index, so ids stay stable).
ID_URL_KEYS = ("webUrl", "url", "canonical_url", "canonicalUrl", "canonical", "permalink", "originalUrl", "link")
# The URL outputs carry: the one the article gave for itself (webUrl, else originalUrl, else the others).
OWN_URL_KEYS = ("webUrl", "originalUrl", "url", "permalink", "link", "canonical_url", "canonicalUrl", "canonical")
DATE_KEYS = ("publishedDateTime", "published", "date", "pubDate", "datePublished", "created")
TAG_KEYS = ("tags", "topics", "categories", "keywords")
AUTHOR_KEYS = ("authors", "author")
_FALSE = {"false", "no", "off", "0"}
_TRUE = {"true", "yes", "on", "1"}


def id_url(meta: dict) -> str | None:
    """The URL the article's id is made from (see ID_URL_KEYS), stripped, or None."""
    return _first_url(meta, ID_URL_KEYS)


def own_url(meta: dict) -> str | None:
    """The URL the article gave for itself, exactly as given (only surrounding white space removed), or None."""
    return _first_url(meta, OWN_URL_KEYS)


def _first_url(meta: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, str) and canonical_url(value):
            return value.strip()
    return None


def is_draft(meta: dict) -> bool:
    """True for an item its site has not published: ``published: false``, ``draft: true`` or a ``status`` of
    draft/unpublished/private (booleans, or their usual spellings as strings)."""
    published, draft = meta.get("published"), meta.get("draft")
    if published is False or (isinstance(published, str) and published.strip().lower() in _FALSE):
        return True
    if draft is True or (isinstance(draft, str) and draft.strip().lower() in _TRUE):
        return True
    status = meta.get("status")
    return isinstance(status, str) and status.strip().lower() in {"draft", "unpublished", "private", "pending"}


def provider(meta: dict) -> str | None:
    value = meta.get("provider") or meta.get("source") or meta.get("publisher")
    if isinstance(value, dict):
        value = value.get("name") or value.get("domain")
    if isinstance(value, list) and value:
        value = value[0]
    return clean_field(value) or None


def tag_list(meta: dict) -> list[str]:
    """Tags, topics, categories and keywords together, in order, without repeats (a comma-separated string is
    split; a category "news" that only marks the item kind is kept like any other)."""
    found: dict[str, str] = {}
    for key in TAG_KEYS:
        for value in as_list(meta.get(key)):
            parts = value.split(",") if isinstance(value, str) else [value]
            for part in parts:
                name = clean_field(part.get("name") if isinstance(part, dict) else part)
                if name and name.lower() not in found:
                    found[name.lower()] = name
    return list(found.values())


def author_list(meta: dict) -> list[str]:
    """Authors from `authors` or `author`: names, mappings with a name, or a comma/" and "-separated string."""
    found: dict[str, str] = {}
    for key in AUTHOR_KEYS:
        for value in as_list(meta.get(key)):
            if isinstance(value, dict):
                value = value.get("name") or value.get("title") or value.get("id")
            parts = re.split(r",|\band\b", value) if isinstance(value, str) else [value]
            for part in parts:
                name = clean_field(part)
                if name and name.lower() not in found:
                    found[name.lower()] = name
    return list(found.values())


def page_type(meta: dict) -> str | None:
    return clean_field(meta.get("page_type") or meta.get("page-type") or meta.get("type")) or None


def published_date(meta: dict, warnings: list[str] | None = None) -> str | None:
    """The first date field (DATE_KEYS) that holds a date, as `normalise_date` gives it. A date field whose value
    is not a date (``2023-13-45``) is passed over and, when `warnings` is given, named there."""
    for key in DATE_KEYS:
        value = meta.get(key)
        if value and not isinstance(value, bool):
            parsed = normalise_date(value)
            if parsed is not None:
                return parsed
            if warnings is not None:
                warnings.append(f"{key}: {str(value)[:80]!r} is not a date; ignored")
    return None


def normalise_date(value: object) -> str | None:
    """ISO 8601 in UTC (``2023-03-19T11:52:00Z``) where the value is a date; None otherwise."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00:00+05:00 is before the first UTC time Python knows
            return None
    return parsed.isoformat(timespec="seconds") + "Z"


def as_list(value: object) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
