"""WordPress export files (WXR: an RSS document with the ``wp:`` export namespace), posts and pages as articles.

`xmlinput` parses the file with defusedxml (no entities, no external references) and hands the tree here. From
each post or page: the title, ``<link>`` (the permalink) as its URL, ``content:encoded`` as the body (HTML and
WordPress shortcodes made text), ``excerpt:encoded`` as the excerpt, ``wp:post_date_gmt`` (else ``pubDate``) as
the date, the ``category`` and ``post_tag`` terms as topics, the author (``dc:creator``, shown by the export's
display name for that login) and the post type (``post`` or ``page``) as the page type. A status other than
``publish`` (draft, pending, private, future, trash) is kept as unpublished: linked from, never linked to, like
``published: false``. Attachments, navigation menu items and every other post type are not articles: they are
counted in one line per file. The id is the permalink's canonical form, else the guid, else ``FILE/post-ID``.
"""

from __future__ import annotations

import re
from collections import Counter
from email.utils import parsedate_to_datetime

from .article import Article, Problem
from .feeds import ItemError, item_article, item_problem
from .fields import normalise_date

WXR_NS = "http://wordpress.org/export/"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
ARTICLE_TYPES = ("post", "page")
TOPIC_DOMAINS = ("category", "post_tag")
_NO_DATE = re.compile(r"^0000-00-00|\s-0001\s")  # what WordPress writes for a post never published
_SHORTCODE = re.compile(r"\[/?[a-z][a-z0-9_-]*(?:\s[^\]]*)?/?\]")  # [caption ...], [/caption], [gallery ids=..]


def is_wxr(root) -> bool:
    """An <rss> document whose channel holds WordPress export elements (wp:wxr_version, wp:author, ...)."""
    channel = root.find("channel")
    return channel is not None and any(child.tag.startswith("{" + WXR_NS) for child in channel)


def read_wxr(root, rel: str) -> tuple[list[Article], list[Problem]]:
    """The posts and pages of a WXR export (a parsed, checked tree)."""
    channel = root.find("channel")
    names = _author_names(channel)
    articles: list[Article] = []
    problems: list[Problem] = []
    other: Counter = Counter()
    stem = rel.rsplit(".", 1)[0]
    for position, item in enumerate(channel.iterfind("item"), start=1):
        fields = _fields(item)
        post_type = fields.get("wp:post_type", "post").strip() or "post"
        if post_type not in ARTICLE_TYPES:
            other[post_type] += 1
            continue
        published, bad_date = _post_date(fields)
        if bad_date:
            problems.append(item_problem(rel, position, fields.get("title"), f"bad date {bad_date!r}; date dropped",
                                         kept=True))
        status = fields.get("wp:status", "publish").strip().lower() or "publish"
        login = fields.get("dc:creator", "").strip()
        post_id = fields.get("wp:post_id", "").strip()
        try:
            articles.append(item_article(
                rel=rel, kind="wxr", title=fields.get("title"), link=fields.get("link"), guid=fields.get("guid"),
                excerpt=fields.get("excerpt:encoded"), body_html=_SHORTCODE.sub(" ", fields.get("content:encoded", "")),
                published=published, topics=_topics(item), authors=[names.get(login, login)] if login else [],
                draft=status != "publish", page_type=post_type,
                fallback_id=f"{stem}/post-{post_id}" if post_id else None))
        except ItemError as exc:
            problems.append(item_problem(rel, position, fields.get("title"), f"{exc}; item skipped"))
    if other:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(other.items()))
        problems.append(Problem(rel, f"not posts or pages, skipped: {counts}"))
    if not articles and not problems:
        problems.append(Problem(rel, "no posts or pages in the export"))
    return articles, problems


def _key(tag: str) -> str:
    """An element's name with the usual prefix of its namespace (wp:, excerpt:, content:, dc:)."""
    if not tag.startswith("{"):
        return tag
    ns, local = tag[1:].split("}", 1)
    if ns.startswith(WXR_NS):
        return f"excerpt:{local}" if ns.rstrip("/").endswith("excerpt") else f"wp:{local}"
    prefix = {CONTENT_NS: "content", DC_NS: "dc"}.get(ns)
    return f"{prefix}:{local}" if prefix else tag


def _fields(element) -> dict[str, str]:
    """The text of each child element (the first of a repeated one), by prefixed name."""
    found: dict[str, str] = {}
    for child in element:
        found.setdefault(_key(child.tag), child.text or "")
    return found


def _author_names(channel) -> dict[str, str]:
    """login -> display name, from the export's wp:author entries."""
    names = {}
    for element in channel:
        if _key(element.tag) == "wp:author":
            fields = _fields(element)
            login, shown = fields.get("wp:author_login", "").strip(), fields.get("wp:author_display_name", "").strip()
            if login and shown:
                names[login] = shown
    return names


def _topics(item) -> list[str]:
    return [(c.text or "").strip() for c in item.iterfind("category")
            if c.get("domain", "category") in TOPIC_DOMAINS and (c.text or "").strip()]


def _post_date(fields: dict[str, str]) -> tuple[str | None, str | None]:
    """(the post's date as ISO 8601 UTC: wp:post_date_gmt, else pubDate; the text of a date that could not be
    read). A never-published post's zero date is no date, not a bad one."""
    gmt, pub = fields.get("wp:post_date_gmt", "").strip(), fields.get("pubDate", "").strip()
    bad = None
    if gmt and not _NO_DATE.search(gmt):
        value = normalise_date(gmt)
        if value:
            return value, None
        bad = gmt
    if pub and not _NO_DATE.search(f" {pub} "):
        try:
            return normalise_date(parsedate_to_datetime(pub)), None
        except (TypeError, ValueError):
            bad = bad or pub
    return None, bad
