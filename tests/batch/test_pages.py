"""Page addresses ([site] key, batch/pages.py) and the site data keyed by them (batch/outputs.by_path)."""

from types import SimpleNamespace

from recommender.batch.outputs import ArticleLinks, by_path
from recommender.batch.pages import page_key
from recommender.rank.policy import Site
from recommender.rank.results import Related


def info(id, url=None, kind="news", path="", slug=None, title="", published=None):
    return SimpleNamespace(id=id, url=url, kind=kind, path=path, slug=slug, title=title, published=published)


def test_url_key_keeps_the_query_that_tells_pages_apart():
    url = Site()
    assert page_key(info("a", "https://www.youtube.com/watch?v=abc&utm_source=x"), url) == "/watch?v=abc"
    assert page_key(info("b", "https://ex.org/blog/post/?ref=home"), url) == "/blog/post/"  # tracking only
    assert page_key(info("text/match-report"), url) == "/text/match-report/"  # no URL: Hugo's /ID/


def test_file_slug_and_permalink_keys():
    news = info("night-sky.example.org/2024/10/comet", "https://night-sky.example.org/2024/10/comet/",
                path="posts/comet-visible.md", title="It's back: a bright comet!", published="2024-10-10T19:00:00Z")
    post = info("x", None, kind="blog", path="_posts/2023-03-19-ai-arms-race.md", slug=None, title="AI")
    bundle = info("y", None, kind="blog", path="posts/trip/index.md", slug="road-trip", title="Trip")
    assert page_key(news, Site(key="file")) == "/posts/comet-visible/"
    assert page_key(bundle, Site(key="file")) == "/posts/trip/"
    assert page_key(bundle, Site(key="slug")) == "/road-trip/"
    assert page_key(news, Site(key="slug")) == "/comet-visible/"
    hugo = Site(key="permalink", permalink="/:section/:slug/")
    assert page_key(news, hugo) == "/posts/its-back-a-bright-comet/"
    assert page_key(bundle, hugo) == "/posts/road-trip/"
    jekyll = Site(key="permalink", permalink="/:year/:month/:day/:title/")
    assert page_key(post, jekyll) == "/2023/03/19/ai-arms-race/"  # the date and title from the file name
    assert page_key(news, jekyll) == "/2024/10/10/comet-visible/"
    assert page_key(info("z", None, kind="blog", path="undated.md"), jekyll) is None  # no date: no page
    stub = info("elsewhere.net/a", "https://elsewhere.net/a", kind="related", path="posts/comet-visible.md")
    assert page_key(stub, hugo) is None and page_key(stub, Site()) == "/a"


def link(target, score=1.0):
    return Related(id=target.id, score=score, title=target.title, url=target.url, published=None, source=None,
                   kind=target.kind)


def test_no_article_is_dropped_for_sharing_a_path_and_collisions_are_reported():
    videos = [info(f"youtube.com/watch?v={v}", f"https://www.youtube.com/watch?v={v}", title=f"Video {v}")
              for v in ("abc", "xyz")]
    copies = [info(f"{host}/story", f"https://{host}/story", title=f"Story at {host}") for host in ("a.org", "b.org")]
    infos = videos + copies
    items = [ArticleLinks(id=i.id, title=i.title, url=i.url, published=None, source=None,
                          related=(link(infos[(n + 1) % 4]),)) for n, i in enumerate(infos)]
    data, counts = by_path(items, infos)
    assert data["/watch?v=abc"][0]["href"] == "https://www.youtube.com/watch?v=xyz" and "/watch?v=xyz" in data
    assert counts["collisions"] == 1 and counts["collided"] == ["/story: b.org/story (the key of a.org/story)"]
    assert counts["keys"] == 3 and data["/story"][0]["id"] == "b.org/story"
    files = [info(i.id, i.url, path=f"posts/{n}.md", title=i.title) for n, i in enumerate(infos)]
    data, counts = by_path(items, files, Site(key="file"))
    assert counts["collisions"] == 0 and sorted(data) == ["/posts/0/", "/posts/1/", "/posts/2/", "/posts/3/"]
    assert data["/posts/0/"][0]["href"] == "/posts/1/"  # the site's page, not the source's address
