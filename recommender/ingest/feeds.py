"""RSS 2.0 and Atom feeds: each item (entry) an article, read by feedparser from bytes already checked.

`xmlinput` reads the file, refuses entity declarations and external references, and hands the bytes here;
feedparser only ever sees those bytes (never a URL or a path, so it fetches nothing). From each item: the title,
the link (the article's URL, as given; the id is its canonical form, else the guid / Atom id), the description or
summary as the excerpt, ``content:encoded`` / Atom content as the body (HTML made text by `text.html_to_text`; a
feed with a description only gives it as the body when it is longer than an excerpt), the date (published, else
updated), the categories, the authors (an Atom feed's own when the entry names none) and the title of an RSS
``<source>`` / Atom source feed.

`item_article` builds the article for this module and for `wxr`, so every XML format gives the same fields the
same way. An item that cannot be used (no link, guid or id; no title and no text) is a `Problem` naming the file
and its position, and skipped; a bad date is reported and dropped, the item kept.
"""

from __future__ import annotations

import io
import re
from datetime import date, datetime

from .article import Article, Problem
from .fields import tag_list
from .budget import check_time
from .text import EXCERPT_CHARS, canonical_url, clean_field, first_sentence, html_to_text, lead_paragraph, url_to_id


class ItemError(ValueError):
    """An item that cannot become an article; the message says why."""


def item_article(*, rel: str, kind: str, title: str | None, link: str | None, guid: str | None,
                 excerpt: str | None, body_html: str | None, published: str | None = None,
                 topics: list[str] | None = None, authors: list[str] | None = None, source: str | None = None,
                 draft: bool = False, page_type: str | None = None, fallback_id: str | None = None) -> Article:
    """One feed item or WordPress post as an Article. excerpt and body_html are HTML (or text); a body without
    an excerpt gives its lead paragraph, an item without a title the first sentence of its text. The id is the
    canonical form of link, else the guid (its canonical form when it is a URL), else fallback_id."""
    check_time()  # one item at a time within the file's read budget
    body = html_to_text(body_html or "")
    excerpt_text = clean_field(excerpt)
    title_text = clean_field(title) or first_sentence(body or excerpt_text, max_chars=90)
    if not excerpt_text and body:
        excerpt_text = lead_paragraph(body)
    if not title_text:
        raise ItemError("no title and no text")
    url = link.strip() if link and canonical_url(link) else None
    guid = (guid or "").strip()
    if url:
        article_id = url_to_id(url)
    elif guid:
        article_id = url_to_id(guid) if canonical_url(guid) else guid
    elif fallback_id:
        article_id = fallback_id
    else:
        raise ItemError("no link and no guid (nothing to make a stable id from)")
    return Article(id=article_id, title=title_text, excerpt=excerpt_text, body=body, url=url, published=published,
                   source=clean_field(source) or None, topics=tag_list({"tags": topics or []}),
                   authors=[a for a in dict.fromkeys(clean_field(a) for a in authors or []) if a],
                   page_type=page_type, draft=draft, kind=kind, path=rel)


def item_problem(rel: str, position: int, title: object, reason: str, kept: bool = False) -> Problem:
    """A problem with one item: its position in the file (and its title when it has one). kept: the item was read
    all the same, one value left out (a bad date): a warning, not a skipped input."""
    name = clean_field(title)
    named = f" ({name[:60]!r})" if name else ""
    return Problem(rel, f"item {position}{named}: {reason}", kept=kept)


def read_feed(data: bytes, rel: str) -> tuple[list[Article], list[Problem]]:
    """The items of an RSS 2.0 or Atom feed (bytes already checked by `xmlinput`)."""
    import feedparser

    parsed = feedparser.parse(io.BytesIO(data), resolve_relative_uris=False, sanitize_html=True)
    articles: list[Article] = []
    problems: list[Problem] = []
    feed_authors = parsed.feed.get("authors") or []  # an Atom entry without an author has the feed's
    for position, entry in enumerate(parsed.entries, start=1):
        published, bad_date = _entry_date(entry)
        if bad_date:
            problems.append(item_problem(rel, position, entry.get("title"), f"bad date {bad_date!r}; date dropped",
                                         kept=True))
        content = "\n\n".join(c.get("value") or "" for c in entry.get("content") or [])
        summary = entry.get("summary") or ""
        if summary == content:  # feedparser copies the content into an item without a description
            summary = ""
        if not content and len(clean_field(summary)) > EXCERPT_CHARS:  # the whole post in its description
            content, summary = summary, ""
        source = entry.get("source") or {}
        try:
            articles.append(item_article(
                rel=rel, kind="feed", title=entry.get("title"), link=entry.get("link"), guid=entry.get("id"),
                excerpt=summary, body_html=content, published=published,
                topics=[t.get("term") or t.get("label") for t in entry.get("tags") or []],
                authors=[a.get("name") or a.get("email") for a in entry.get("authors") or feed_authors if a],
                source=source.get("title") if isinstance(source, dict) else None))
        except ItemError as exc:
            problems.append(item_problem(rel, position, entry.get("title"), f"{exc}; item skipped"))
    if not articles and not problems:
        problems.append(Problem(rel, "no items in the feed"))
    return articles, problems


def _entry_date(entry) -> tuple[str | None, str | None]:
    """(the item's date, published else updated, as ISO 8601 UTC; the text of a date that could not be read when
    neither could)."""
    bad = None
    for key in ("published", "updated"):
        # dict.get: feedparser's own get maps a missing `updated` to `published`, with a deprecation warning
        raw, parsed = dict.get(entry, key), dict.get(entry, f"{key}_parsed")
        value = _item_date(raw, parsed)
        if value is not None:
            return value, None
        bad = bad or (str(raw) if raw else None)
    return None, bad


# the day of an ISO 8601 date (2024-02-30, 20240230, 10000-01-01): feedparser rolls a day that does not exist over
# to another (2024-02-30 is 1 March, 10000-01-01 is 2010-12-01), so the day is checked here first
_ISO_DAY = re.compile(r"\s*([+-]?\d{4,})-?(\d\d)-?(\d\d)")


def _item_date(raw: object, parsed) -> str | None:
    """feedparser's reading of a date (`parsed`, a UTC time tuple) as ISO 8601, or None: no reading, an ISO day
    that does not exist, or a year datetime cannot hold (0000-01-01, 9999-12-31T23:59:59-05:00 in UTC)."""
    if parsed is None:
        return None
    day = _ISO_DAY.match(raw) if isinstance(raw, str) else None
    try:
        if day:
            date(*(int(part) for part in day.groups()))
        return datetime(*parsed[:6]).isoformat(timespec="seconds") + "Z"
    except (ValueError, OverflowError):
        return None
