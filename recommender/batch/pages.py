"""The address of each article's page on the site, as the policy's `[site] key` says: what the site data
(`related_by_path.json`, `--site-data`) is keyed by, and what a reader follows to a linked article.

* ``url``: the path of the URL the article gave, with its query string when it has parameters other than
  tracking ones (``/watch?v=abc``: pages that differ only by a parameter stay apart); ``/ID/`` without a URL
  (Hugo's address of ``content/ID.md``).
* ``file``: the path of its source file in the corpus without the extension, ``/posts/my-post/`` (a page
  bundle's ``index.md`` is its folder's page); a JSONL line: ``/ID/``.
* ``slug``: ``/SLUG/``, the `slug` it gave, else its file name.
* ``permalink``: the `[site] permalink` pattern, e.g. ``/posts/:slug/`` (Hugo) or ``/:year/:month/:day/:title/``
  (Jekyll), with ``:section`` (the first folder of its file), ``:slug`` (its slug, else its title as Hugo's
  urlize makes it), ``:title`` (Jekyll's: its slug, else its file name without a ``YYYY-MM-DD-`` date),
  ``:filename`` (its file name without extension), ``:year``, ``:month``, ``:day`` (its date, else the file
  name's date).

Under ``file``, ``slug`` and ``permalink`` only the articles read from files have a page; a curated stub (an
item of a `related:` list) has none, and a link to one goes to its URL.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..ingest.text import TRACKING_PARAMS, TRACKING_PREFIXES
from ..rank.policy import Site

_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-")
_TOKEN = re.compile(r":(\w+)")


def url_key(url: str | None, article_id: str) -> str:
    """The key of an article by its URL: its path (and query when it has parameters that are not tracking
    ones), or /ID/ when it has no URL."""
    if not url:
        return f"/{article_id.strip('/')}/"
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)]
    return (parts.path or "/") + (f"?{urlencode(query)}" if query else "")


def page_key(info, site: Site) -> str | None:
    """The address of the article's page on the site (a path starting with /), or None when it has none (a
    curated stub under a key other than url, or a permalink whose date it lacks)."""
    if site.key == "url":
        return url_key(info.url, info.id)
    if info.kind == "related":
        return None
    if info.kind == "jsonl" or site.key == "file":
        return _file_key(info)
    if site.key == "slug":
        return f"/{info.slug or _stem(info.path)}/"
    values = {"section": _section(info.path), "slug": info.slug or urlize(info.title),
              "title": info.slug or _DATE_PREFIX.sub("", _stem(info.path)), "filename": _stem(info.path)}
    values.update(zip(("year", "month", "day"), _date(info)))
    if any(values.get(t) is None for t in _TOKEN.findall(site.permalink)):
        return None
    key = _TOKEN.sub(lambda m: values[m.group(1)], site.permalink)
    return re.sub(r"/{2,}", "/", key)


def href(info, key: str | None, site: Site) -> str | None:
    """What a reader follows to the article: its URL under the url key (else its /ID/ page); under the other
    keys its page on the site when it has one, else its URL."""
    if site.key == "url":
        return info.url or key
    return key or info.url


def _file_key(info) -> str:
    if info.kind == "jsonl":
        return f"/{info.id.strip('/')}/"
    path = PurePosixPath(info.path)
    parts = list(path.parent.parts) if path.stem in ("index", "_index") else [*path.parent.parts, path.stem]
    parts = [p for p in parts if p not in ("", ".")]
    return "/" + "".join(f"{p}/" for p in parts) if parts else "/"


def _stem(path: str) -> str:
    return PurePosixPath(path).stem


def _section(path: str) -> str:
    parts = PurePosixPath(path).parent.parts
    return parts[0] if parts and parts[0] != "." else ""


def _date(info) -> tuple[str | None, str | None, str | None]:
    match = re.match(r"(\d{4})-(\d{2})-(\d{2})", info.published or "") or _DATE_PREFIX.match(_stem(info.path))
    return match.groups() if match else (None, None, None)


def urlize(title: str) -> str:
    """A title as a path segment, as Hugo's urlize makes it: lower case, words joined by hyphens."""
    text = unicodedata.normalize("NFKC", title or "").lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s_-]+", "-", text).strip("-")
