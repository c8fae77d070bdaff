"""The demo corpus as a WordPress export and as an RSS feed (tests/fixtures/demo-feeds, written from demo/ by
scripts/make_demo_feeds.py) batches to the same related lists as the Markdown / text / JSONL demo: the same
articles, the same links in the same order, the same scores.

Articles and links are compared by URL (ids differ: a JSONL line's id is its own, a feed item's is its URL's
canonical form); the demo's plain-text articles have no URL in any version and are compared by id (their path,
which the feeds carry as a non-permalink guid). The hashing embedder gives identical vectors for identical
text, so equal lists show the readers give the same text, dates and topics. The RSS feed holds only published
articles, so it is compared with a copy of demo/ without the file of its unpublished article.
"""

import importlib.util
import shutil

import pytest

from recommender.batch.nightly import run_batch
from recommender.batch.outputs import read_jsonl
from recommender.ingest.reader import read_corpus
from recommender.rank.policy import TARGETS, Policy

from conftest import DEMO, FIXTURES, ROOT

FEEDS = FIXTURES / "demo-feeds"
# every article gets 8 links (no minimum score, every kind of target: the Markdown demo's curated pages are stubs,
# the feeds' are items), so the comparison covers full lists, not only the strongest
POLICY = Policy().with_links(k=8, min_score=None, min_reverse=None, targets=TARGETS)


def _script():
    spec = importlib.util.spec_from_file_location("make_demo_feeds", ROOT / "scripts" / "make_demo_feeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lists(corpus, tmp_path, name) -> dict[str, list[tuple[str, float]]]:
    """{article URL (else id): [(link URL (else id), score), ...]} from one batch's related.jsonl."""
    record = run_batch(corpus, tmp_path / f"{name}-idx", tmp_path / f"{name}-out", POLICY, model="hashing",
                       progress=False)
    assert record.status == "ok" and record.skipped == 0, record
    return {r["url"] or r["id"]: [(link["url"] or link["id"], link["score"]) for link in r["related"]]
            for r in read_jsonl(tmp_path / f"{name}-out")}


def assert_same_lists(feed: dict, markdown: dict) -> None:
    assert sorted(feed) == sorted(markdown)  # the same articles
    for key, links in markdown.items():
        assert [url for url, _ in feed[key]] == [url for url, _ in links], key  # the same links, in order
        assert [s for _, s in feed[key]] == pytest.approx([s for _, s in links], abs=1e-5), key


def test_demo_feed_fixtures_are_what_the_script_writes_from_demo():
    script = _script()
    for name, text in script.generated().items():
        assert (FEEDS / name).read_text(encoding="utf-8") == text, f"{name}: run scripts/make_demo_feeds.py"


@pytest.mark.parametrize("name", ["demo-wordpress.xml", "demo.rss"])
def test_the_feeds_give_the_demo_articles_text_dates_and_topics(name):
    script = _script()
    expected = script.demo_articles() if name.endswith(".xml") else script.published_articles()
    got = read_corpus(FEEDS / name)
    assert got.problems == [] and len(got.articles) == len(expected)
    key = lambda a: a.url or a.id  # noqa: E731
    fields = ("title", "excerpt", "body", "published", "draft", "topics")
    assert [(key(a), *(getattr(a, f) for f in fields)) for a in got.articles] == \
           [(key(a), *(getattr(a, f) for f in fields)) for a in expected]


def test_wordpress_export_of_the_demo_batches_to_the_same_lists(tmp_path):
    markdown = lists(DEMO, tmp_path, "markdown")
    wxr = lists(FEEDS / "demo-wordpress.xml", tmp_path, "wxr")
    assert_same_lists(wxr, markdown)
    # nearly full lists (a link that shares a title with one shown before it is left out: one title per list)
    assert len(markdown) == 42 and sum(map(len, markdown.values())) >= 42 * 7
    draft = "https://pocketbook-news.example.com/2025/02/mortgage-rates-fall/"  # `published: false` / draft
    assert draft in wxr and all(draft not in [url for url, _ in links] for links in wxr.values())
    assert sum(key.startswith("text/") for key in wxr) == 11  # no URL: compared by id


def test_rss_feed_of_the_demo_batches_to_the_same_lists_as_its_published_part(tmp_path):
    published = tmp_path / "demo-published"
    files = _script().published_demo_files(DEMO)
    for path in files:
        target = published / path.relative_to(DEMO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    assert len(files) == len(list(DEMO.rglob("*.*"))) - 2  # README.md and the unpublished news item left out
    markdown = lists(published, tmp_path, "markdown")
    feed = lists(FEEDS / "demo.rss", tmp_path, "rss")
    assert_same_lists(feed, markdown)
    # nearly full lists (a link that shares a title with one shown before it is left out: one title per list)
    assert len(markdown) == 40 and sum(map(len, markdown.values())) >= 40 * 7
