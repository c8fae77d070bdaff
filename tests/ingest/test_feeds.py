"""WordPress exports (WXR), RSS 2.0 and Atom feeds: what is read from each (tests/fixtures/feeds), what is skipped
and counted, and bad input (tests/fixtures/feeds-bad): one line per broken file or item, entity expansion and
external references refused, nothing fetched."""

import socket

import pytest

from recommender.ingest import reader
from recommender.ingest.reader import read_corpus

from conftest import FIXTURES

FEEDS = FIXTURES / "feeds"
BAD = FIXTURES / "feeds-bad"


@pytest.fixture(scope="module")
def corpus():
    return read_corpus(FEEDS)


def problems_of(corpus, name):
    return [str(p) for p in corpus.problems if p.path == name]


def test_wordpress_post_fields(corpus):
    post = corpus.by_id()["greenthumb.example.org/2025/03/broad-beans-in-march"]
    assert (post.kind, post.page_type, post.draft) == ("wxr", "post", False)
    assert post.title == "Broad beans in March: sowing outside & under cover"
    assert post.url == "https://greenthumb.example.org/2025/03/broad-beans-in-march/"  # the permalink, as given
    assert post.excerpt == "Sow broad beans outside in March, or under cover when the spring is cold."
    assert post.published == "2025-03-15T09:30:00Z"  # wp:post_date_gmt
    assert post.topics == ["Vegetables", "sowing"]  # category and post_tag; the post format is not a topic
    assert post.authors == ["Hazel Okafor"]  # dc:creator's login, shown by the export's display name
    # HTML made text: block comments, tags and the [caption] shortcode go, paragraphs and entities stay
    assert post.body == ("Broad beans are the first crop of the year on our plot. We sow them straight into the "
                         "ground in March, five centimetres deep, two rows to a bed.\n\nUnder cover\n\nIn a cold "
                         "spring start them in root trainers in the greenhouse — mice love the seeds & take them "
                         "from open ground.\n\nSeedlings in root trainers")


def test_wordpress_pages_statuses_and_excerpt_from_body(corpus):
    by_url = {a.url: a for a in corpus.articles if a.kind == "wxr"}
    about = by_url["https://greenthumb.example.org/about/"]
    assert about.page_type == "page" and not about.draft
    compost = by_url["https://greenthumb.example.org/2025/04/compost-bay-pallets/"]
    assert compost.excerpt.startswith("Four pallets tied at the corners") and compost.authors == ["Tomás Reyes"]
    # draft, private, pending and trash are kept but unpublished (never linked to, like `published: false`)
    unpublished = {a.title for a in by_url.values() if a.draft}
    assert unpublished == {"Slugs: what actually works", "Members' plot rota", "Pending: leek trench",
                           "Old frost dates"}
    assert by_url["https://greenthumb.example.org/?p=16"].published is None  # 0000-00-00: never published
    assert len(by_url) == 8


def test_wordpress_skipped_items_are_counted_and_bad_items_named(corpus):
    assert problems_of(corpus, "wordpress-export.xml") == [
        "wordpress-export.xml: item 9: no title and no text; item skipped",
        "wordpress-export.xml: item 10 ('Seed swap in June'): bad date '2025-02-30 10:00:00'; date dropped",
        "wordpress-export.xml: not posts or pages, skipped: 1 attachment, 2 nav_menu_item, 1 revision",
    ]
    swap = corpus.by_id()["greenthumb.example.org/2025/05/seed-swap"]
    assert swap.published is None and swap.topics == ["Events"]  # kept, the bad date dropped


def test_rss_item_fields(corpus):
    item = corpus.by_id()["courier.example.com/2025/06/footbridge-reopens"]
    assert item.kind == "feed"
    assert item.url == "https://courier.example.com/2025/06/footbridge-reopens/?utm_source=rss"  # byte for byte
    assert item.excerpt.startswith("The footbridge between the market and the station is open again, eight")
    assert item.body == ("The footbridge between the market and the station is open again.\n\nEngineers replaced "
                         "two piers & raised the deck by half a metre, so the next flood should pass underneath.")
    assert item.published == "2025-06-03T06:45:00Z"  # +0100 in the feed
    assert (item.topics, item.authors, item.source) == (["Transport", "Floods"], ["Mara Quinn"], "Valley Wire")
    library = corpus.by_id()["courier.example.com/2025/06/library-hours"]  # a permalink guid is the link
    assert library.url == "https://courier.example.com/2025/06/library-hours/"
    assert library.body == "" and library.excerpt == "From July the central library opens until eight on weekdays."
    assert library.authors == ["Courier Desk"]


def test_rss_bad_items_are_named_by_position_and_the_others_read(corpus):
    assert problems_of(corpus, "newsroom.rss") == [
        "newsroom.rss: item 3: no title and no text; item skipped",
        "newsroom.rss: item 4 ('Regatta moved to September'): bad date 'last Thursday'; date dropped",
        "newsroom.rss: item 5 ('An item with nothing to call it by'): no link and no guid (nothing to make a "
        "stable id from); item skipped",
    ]
    assert corpus.by_id()["courier.example.com/2025/06/regatta-september"].published is None
    assert sum(a.path == "newsroom.rss" for a in corpus.articles) == 3


def test_atom_entries(corpus):
    ids = corpus.by_id()
    swifts = ids["fieldnotes.example.net/2025/05/swifts-return"]
    assert swifts.published == "2025-05-12T04:00:00Z"  # published (not updated), in UTC
    assert swifts.body == ("Swifts spend almost their whole lives on the wing.\n\n"
                           "Nest boxes under the church eaves are occupied again.")
    assert swifts.authors == ["Ines Varga", "Jon Pike"] and swifts.topics == ["Birds", "Migration"]
    moths = ids["fieldnotes.example.net/2025/05/moth-night"]
    assert moths.title == "Moth trap night results"  # an HTML title made text
    assert moths.published == "2025-05-20T18:30:00Z" and moths.authors == ["Ines Varga"]  # the feed's author
    assert moths.body.startswith("Forty-one species")  # XHTML content
    dawn = ids["urn:uuid:6c5f1a9e-3b1d-4c55-9a8e-0c1d2e3f4a5b"]  # no link: the entry id is the id, no URL
    assert dawn.url is None and dawn.excerpt.startswith("Blackcaps")


def test_xml_that_is_not_a_feed_is_ignored_and_counted(corpus):
    assert corpus.ignored == ["sitemap.xml"]
    assert {a.path for a in corpus.articles} == {"wordpress-export.xml", "newsroom.rss", "field-notes.atom"}


def test_broken_files_are_one_line_each_and_entities_are_refused():
    corpus = read_corpus(BAD)
    assert corpus.articles == [] and corpus.ignored == []
    assert sorted(map(str, corpus.problems)) == [
        "billion-laughs.xml: refused: the document declares XML entities (<!ENTITY>), which could expand "
        "without limit",
        "broken.atom: not well-formed XML: no element found: line 8, column 0",
        "empty.rss: empty file",
        "external-entity.rss: refused: the document declares XML entities (<!ENTITY>), which could expand "
        "without limit",
        "not-a-feed.rss: not an RSS or Atom feed or a WordPress export (root element <html>)",
    ]


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setattr(reader, "MAX_FILE_BYTES", 2000)
    corpus = read_corpus(FEEDS / "wordpress-export.xml")
    size = (FEEDS / "wordpress-export.xml").stat().st_size
    assert [str(p) for p in corpus.problems] == [f"wordpress-export.xml: file too large ({size} bytes, limit 2000)"]


def test_nothing_is_fetched_for_an_external_doctype(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.2)
        port = server.getsockname()[1]
        feed = tmp_path / "netscape.rss"
        feed.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "http://127.0.0.1:{port}/rss-0.91.dtd">\n'
                        '<rss version="0.91"><channel><title>Old</title><item><title>Still read</title>'
                        '<link>https://old.example.com/1</link></item></channel></rss>\n')
        corpus = read_corpus(feed)
        assert [a.title for a in corpus.articles] == ["Still read"] and corpus.problems == []
        with pytest.raises(socket.timeout):
            server.accept()  # no one connected for the DTD


def test_an_html_entity_in_a_feed_is_reported_where_it_is(tmp_path):
    feed = tmp_path / "news.rss"
    feed.write_text('<rss version="2.0"><channel>\n<item><title>Caf&eacute; opens</title></item>\n</channel></rss>\n')
    assert [str(p) for p in read_corpus(feed).problems] == [
        "news.rss: not well-formed XML: undefined entity: line 2, column 16 near '&eacute; opens</'"]


ATOM_ENTRY = ("<entry><title>Entry {i}</title><id>urn:e{i}</id><link href='https://ex.com/e{i}'/>"
              "<published>{date}</published><summary>Compost and soil, entry {i}.</summary></entry>")


@pytest.mark.parametrize("date", ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
                                  "2024-02-30T00:00:00Z", "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
                                  "99999999999"])
def test_an_atom_date_out_of_range_or_impossible_costs_that_date_only(tmp_path, date):
    # feedparser reads these as year 0 or 10000 (which datetime refuses) or rolls them over to another day
    # (2024-02-30 as 1 March, 10000-01-01 as 2010-12-01): each is that item's bad date, the feed still read
    entries = ATOM_ENTRY.format(i=1, date=date) + ATOM_ENTRY.format(i=2, date="2024-01-01T10:00:00+02:00")
    (tmp_path / "a.atom").write_text("<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/"
                                     f"Atom'><title>T</title><id>urn:f</id>{entries}</feed>")
    corpus = read_corpus(tmp_path)
    assert [(a.id, a.published) for a in corpus.articles] == [("ex.com/e1", None),
                                                              ("ex.com/e2", "2024-01-01T08:00:00Z")]
    assert [str(p) for p in corpus.problems] == [f"a.atom: item 1 ('Entry 1'): bad date {date!r}; date dropped"]


def test_a_bad_item_date_is_a_warning_and_a_skipped_item_is_not(corpus):
    # the item is read without its date (like a bad date in front matter or JSONL): not counted as skipped input
    kinds = {str(p): p.kept for p in corpus.problems if "item" in p.reason}
    assert kinds["newsroom.rss: item 4 ('Regatta moved to September'): bad date 'last Thursday'; date dropped"]
    assert kinds["wordpress-export.xml: item 10 ('Seed swap in June'): bad date '2025-02-30 10:00:00'; date dropped"]
    assert not kinds["newsroom.rss: item 3: no title and no text; item skipped"]
    assert sum(kinds.values()) == 2 and len(kinds) > 2
