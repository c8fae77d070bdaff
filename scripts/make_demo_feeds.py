#!/usr/bin/env python3
"""Write the demo corpus (demo/) as a WordPress export (WXR) and as an RSS 2.0 feed, the test fixtures that show
the XML readers give the same articles, and so the same related lists, as the Markdown, text and JSONL readers.

Each article the reader takes from demo/ (news items, blog posts, plain text, JSONL lines, and the curated
pages outside the corpus that the news items' `related:` lists name) becomes one item, in the reader's order:
its title, URL (`<link>`), excerpt, body (as HTML paragraphs), date, topics, authors and source. What a feed
cannot say differently from demo/, it says the way WordPress and RSS do:

* the plain-text articles have no URL in demo/ (their id is their path, `text/tennis-comeback`), so their
  items have no link and that id as a `<guid isPermaLink="false">`, which the readers take as the id;
* the unpublished article (`published: false`) is a post with status `draft` in the export; an RSS feed
  carries only what is published, so the feed is written from demo/ without the files of unpublished articles
  (`published_demo_files`), and is compared with a copy of demo/ without them;
* the curated `related:` lists themselves have no place in either format (they only matter to `evaluate`,
  `check` and the learned ranking, which needs 50 lists); the pages they name are items like any other.

    python scripts/make_demo_feeds.py           # write tests/fixtures/demo-feeds/demo-wordpress.xml, demo.rss
    python scripts/make_demo_feeds.py --check   # exit 1 if the committed files are not what demo/ gives now
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.ingest.article import Article  # noqa: E402
from recommender.ingest.merge import merge_articles  # noqa: E402
from recommender.ingest.reader import iter_corpus_files, read_corpus, read_file  # noqa: E402

DEMO = ROOT / "demo"
OUT = ROOT / "tests" / "fixtures" / "demo-feeds"
WXR_FILE, RSS_FILE = "demo-wordpress.xml", "demo.rss"
SITE = "https://demo.example.org"


def demo_articles(demo: Path = DEMO) -> list[Article]:
    corpus = read_corpus(demo)
    if corpus.problems:
        raise SystemExit("demo/ has problems: " + "; ".join(map(str, corpus.problems)))
    return corpus.articles


def published_demo_files(demo: Path = DEMO) -> list[Path]:
    """demo/'s files whose own article is published (a file of an unpublished article is left out whole,
    with the curated pages only it names)."""
    return [f for f in iter_corpus_files(demo) if not any(a.draft for a in read_file(f, demo)[0])]


def published_articles(demo: Path = DEMO) -> list[Article]:
    found = [a for f in published_demo_files(demo) for a in read_file(f, demo)[0]]
    return merge_articles(found)[0]


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _html_body(body: str) -> str:
    return "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in body.split("\n\n") if p)


def _date(published: str | None) -> datetime | None:
    return datetime.fromisoformat(published.replace("Z", "+00:00")) if published else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def wxr(articles: list[Article]) -> str:
    """A WordPress 1.2 export of the articles: each a post (status draft when unpublished)."""
    authors = sorted({a.authors[0] for a in articles if a.authors})
    lines = ['<?xml version="1.0" encoding="UTF-8" ?>',
             "<!-- The demo corpus as a WordPress export, written by scripts/make_demo_feeds.py: do not edit. -->",
             '<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"',
             '  xmlns:content="http://purl.org/rss/1.0/modules/content/"',
             '  xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">',
             "<channel>", "  <title>Demo corpus</title>", f"  <link>{SITE}</link>",
             "  <wp:wxr_version>1.2</wp:wxr_version>", f"  <wp:base_site_url>{SITE}</wp:base_site_url>"]
    for n, name in enumerate(authors, start=1):
        lines.append(f"  <wp:author><wp:author_id>{n}</wp:author_id><wp:author_login>{_cdata(_slug(name))}"
                     f"</wp:author_login><wp:author_display_name>{_cdata(name)}</wp:author_display_name></wp:author>")
    for post_id, a in enumerate(articles, start=100):
        when = _date(a.published)
        lines += ["  <item>", f"    <title>{_cdata(html.escape(a.title, quote=False))}</title>",
                  f"    <link>{html.escape(a.url or '')}</link>",
                  f"    <pubDate>{format_datetime(when) if when else ''}</pubDate>"]
        if a.authors:
            lines.append(f"    <dc:creator>{_cdata(_slug(a.authors[0]))}</dc:creator>")
        lines += [f'    <guid isPermaLink="false">{html.escape(a.id)}</guid>',
                  f"    <content:encoded>{_cdata(_html_body(a.body))}</content:encoded>",
                  f"    <excerpt:encoded>{_cdata(html.escape(a.excerpt, quote=False))}</excerpt:encoded>",
                  f"    <wp:post_id>{post_id}</wp:post_id>",
                  f"    <wp:post_date_gmt>{when.strftime('%Y-%m-%d %H:%M:%S') if when else '0000-00-00 00:00:00'}"
                  "</wp:post_date_gmt>",
                  f"    <wp:post_name>{_cdata(_slug(a.id.rsplit('/', 1)[-1]))}</wp:post_name>",
                  f"    <wp:status>{'draft' if a.draft else 'publish'}</wp:status>",
                  "    <wp:post_type>post</wp:post_type>"]
        lines += [f'    <category domain="post_tag" nicename="{_slug(t)}">{_cdata(t)}</category>' for t in a.topics]
        lines.append("  </item>")
    return "\n".join(lines + ["</channel>", "</rss>", ""])


def rss(articles: list[Article]) -> str:
    """An RSS 2.0 feed of the (published) articles."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- The demo corpus's published articles as an RSS 2.0 feed, written by scripts/make_demo_feeds.py:"
             " do not edit. -->",
             '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
             ' xmlns:dc="http://purl.org/dc/elements/1.1/">',
             "<channel>", "  <title>Demo corpus</title>", f"  <link>{SITE}/</link>",
             "  <description>The recommender's demo articles</description>"]
    for a in articles:
        if a.draft:
            raise ValueError(f"{a.id}: an RSS feed carries no unpublished article")
        when = _date(a.published)
        lines += ["  <item>", f"    <title>{html.escape(a.title, quote=False)}</title>"]
        if a.url:
            lines.append(f"    <link>{html.escape(a.url)}</link>")
        lines += [f'    <guid isPermaLink="false">{html.escape(a.id)}</guid>',
                  f"    <description>{html.escape(a.excerpt, quote=False)}</description>"]
        if a.body:
            lines.append(f"    <content:encoded>{_cdata(_html_body(a.body))}</content:encoded>")
        if when:
            lines.append(f"    <pubDate>{format_datetime(when)}</pubDate>")
        lines += [f"    <dc:creator>{html.escape(name, quote=False)}</dc:creator>" for name in a.authors]
        lines += [f"    <category>{html.escape(t, quote=False)}</category>" for t in a.topics]
        if a.source and a.url:
            home = re.match(r"https?://[^/]+/", a.url)
            lines.append(f'    <source url="{html.escape(home.group(0) if home else a.url)}">'
                         f"{html.escape(a.source, quote=False)}</source>")
        lines.append("  </item>")
    return "\n".join(lines + ["</channel>", "</rss>", ""])


def generated(demo: Path = DEMO) -> dict[str, str]:
    return {WXR_FILE: wxr(demo_articles(demo)), RSS_FILE: rss(published_articles(demo))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are not current")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generated().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"not current (run scripts/make_demo_feeds.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
