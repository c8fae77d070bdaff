import json

import pytest

from recommender.ingest.reader import looks_like_title, parse_jsonl_record, read_corpus, IngestError


@pytest.fixture
def corpus(corpus_dir):
    return read_corpus(corpus_dir)


def test_news_item_fields_and_secured_ignored(corpus):
    art = corpus.by_id()["energy-desk.example.com/2024/05/02/grid-batteries-desert-town"]
    assert art.kind == "news"
    assert art.title == "Grid batteries let a desert town run on sunshine after dark"
    # outputs carry the URL the article gave, byte for byte; ids and deduplication use its canonical form
    assert art.url == "https://www.energy-desk.example.com/2024/05/02/grid-batteries-desert-town/?utm_source=feed"
    assert art.canonical == "https://energy-desk.example.com/2024/05/02/grid-batteries-desert-town"
    assert art.published == "2024-05-02T08:15:00Z"
    assert art.source == "Energy Desk"
    assert art.topics == ["Energy Storage", "Solar"]
    assert art.body == ""  # the secured body is encrypted: never read
    assert "Zm9v" not in json.dumps(art.to_dict())


def test_related_items_become_articles_with_canonical_ids(corpus):
    ids = corpus.by_id()
    stub = ids["power-notes.example.org/wind-and-storage"]  # from "HTTP://Power-Notes.example.org/wind-and-storage/"
    assert stub.kind == "related"
    assert stub.title == "Wind and storage: the quiet partnership"
    assert stub.source == "Power Notes"
    assert stub.url == "HTTP://Power-Notes.example.org/wind-and-storage/"
    news = ids["energy-desk.example.com/2024/05/02/grid-batteries-desert-town"]
    assert news.curated == [
        "power-notes.example.org/home-batteries-paying-off",
        "power-notes.example.org/wind-and-storage",
        "blue-sea-power.example.net/records/offshore-week",
    ]


def test_duplicate_related_item_is_one_article_and_keeps_longer_excerpt(corpus):
    matches = [a for a in corpus.articles if a.id == "blue-sea-power.example.net/records/offshore-week"]
    assert len(matches) == 1
    assert matches[0].excerpt.endswith("grid operators said on Monday.")


def test_related_item_pointing_at_corpus_article_is_not_duplicated(corpus):
    target = "energy-desk.example.com/2024/05/02/grid-batteries-desert-town"
    assert sum(a.id == target for a in corpus.articles) == 1
    assert corpus.by_id()[target].kind == "news"  # the full article wins over the stub
    wind = corpus.by_id()["energy-desk.example.com/2024/06/11/wind-record-engineers"]
    assert target in wind.curated


def test_mojibake_repaired_in_news_and_blog_titles(corpus):
    ids = corpus.by_id()
    assert ids["energy-desk.example.com/2024/06/11/wind-record-engineers"].title.startswith("Don’t expect")
    assert ids["weekend-sourdough"].title == "3. 🍞A Slow Weekend Sourdough"


def test_blog_body_is_text_without_markup(corpus):
    blog = corpus.by_id()["weekend-sourdough"]  # id from its slug, not from its <link rel=canonical>
    assert blog.kind == "blog"
    assert blog.excerpt.startswith("A forgiving sourdough schedule")
    assert "cold overnight proof gives the yeast" in blog.body
    for junk in ("EDITOR NOTE", "<head>", "canonical", "print(", "](", "**", "loaf.png", "##"):
        assert junk not in blog.body
    assert "hydration levels and autolyse" in blog.body
    assert "📌" in blog.body


def test_blog_without_url_uses_slug_and_heading_free_excerpt(corpus):
    post = corpus.by_id()["knife-skills"]
    assert post.url is None
    assert post.excerpt.startswith("A sharp chef's knife")


def test_plain_text_with_and_without_title_line(corpus):
    ids = corpus.by_id()
    marathon = ids["text/marathon"]
    assert marathon.title == "Training for a first marathon"
    assert marathon.body.startswith("Most beginners")
    match = ids["text/match-report"]
    assert match.title.startswith("The midfielder scored twice in the second half")
    assert len(match.title) <= 90
    assert match.body.startswith("The midfielder scored twice")


def test_jsonl_articles_and_bad_line_reported(corpus):
    ids = corpus.by_id()
    rover = ids["feed/rover-landing"]
    assert rover.kind == "jsonl" and rover.source == "Space Wire"
    assert rover.published == "2025-02-18T20:55:00Z"
    assert ids["feed/orbit-station"].excerpt == "Four astronauts begin six months of experiments."
    problems = [str(p) for p in corpus.problems]
    assert any(p.startswith("feed.jsonl:4: invalid JSON") for p in problems)
    assert any("related item 3: not a mapping" in p for p in problems)


def test_bad_files_are_reported_and_skipped(bad_dir):
    corpus = read_corpus(bad_dir)
    assert corpus.articles == []
    reasons = {p.path: p.reason for p in corpus.problems}
    assert reasons["empty.md"] == "empty file"
    assert reasons["binary.txt"].startswith("binary file")
    assert reasons["latin1.txt"].startswith("not valid UTF-8 (byte 0xe9")
    assert reasons["broken-yaml.md"].startswith("front matter is not valid YAML")
    assert reasons["list-front-matter.md"] == "front matter is not a mapping of keys to values"


def test_one_bad_file_does_not_stop_the_others(tmp_path, corpus_dir, bad_dir):
    import shutil

    shutil.copytree(corpus_dir, tmp_path / "c")
    shutil.copytree(bad_dir, tmp_path / "c" / "bad")
    corpus = read_corpus(tmp_path / "c")
    assert len(corpus.articles) == len(read_corpus(corpus_dir).articles)
    assert len(corpus.problems) == 7


def test_duplicate_ids_and_urls_reported(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        '{"id": "x", "title": "First", "text": "one", "url": "https://ex.com/p"}\n'
        '{"id": "x", "title": "Second", "text": "two"}\n'
        '{"id": "y", "title": "Third", "text": "three", "url": "http://www.ex.com/p/"}\n'
    )
    corpus = read_corpus(tmp_path / "a.jsonl")
    assert [a.title for a in corpus.articles] == ["First"]
    assert [p.reason.split(" (")[0] for p in corpus.problems] == ["duplicate id 'x'", "duplicate canonical URL 'y'"]


def test_readme_and_hidden_files_are_not_articles(tmp_path):
    (tmp_path / "README.md").write_text("# About this corpus\n\nNot an article.")
    (tmp_path / ".hidden.txt").write_text("Hidden\nnot an article")
    (tmp_path / "real.txt").write_text("Real title\nA real article body sentence.")
    assert [a.id for a in read_corpus(tmp_path).articles] == ["real"]


def test_files_not_read_are_counted_as_ignored(tmp_path):
    (tmp_path / "README.md").write_text("# About this corpus\n\nNot an article.")
    (tmp_path / ".hidden.txt").write_text("Hidden\nnot an article")
    (tmp_path / "real.txt").write_text("Real title\nA real article body sentence.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text("<p>Not read</p>")
    (tmp_path / "sub" / "photo.JPG").write_bytes(b"\xff\xd8")
    (tmp_path / "sub" / "post.MD").write_text("Upper-case suffix\nIs read as Markdown.")
    corpus = read_corpus(tmp_path)
    assert sorted(a.id for a in corpus.articles) == ["real", "sub/post"]
    assert corpus.ignored == ["README.md", "sub/page.html", "sub/photo.JPG"]  # hidden files are not counted
    assert read_corpus(tmp_path / "real.txt").ignored == []


def test_jsonl_record_without_id_uses_url():
    art = parse_jsonl_record('{"title": "T", "text": "body", "url": "https://www.ex.com/a/"}', "f.jsonl")
    assert art.id == "ex.com/a"
    with pytest.raises(IngestError, match="no id and no url"):
        parse_jsonl_record('{"title": "T", "text": "body"}', "f.jsonl")


def test_missing_corpus_path():
    with pytest.raises(FileNotFoundError):
        read_corpus("/nonexistent/corpus")


@pytest.mark.parametrize("line,expected", [
    ("A Joint Statement from Two Companies", True),
    ("In recent years, two firms have been viewed as one of the most influential partnerships in tech.", False),
    ("Key points:", False),
    ("", False),
])
def test_looks_like_title(line, expected):
    assert looks_like_title(line) is expected


def test_tags_authors_and_page_type_are_kept_from_front_matter_and_jsonl(tmp_path):
    from recommender import read_corpus

    (tmp_path / "post.md").write_text(
        "---\ntitle: Caching at the edge\nslug: caching-edge\ntags: [CDN, caching]\ncategories: Performance\n"
        "keywords: \"latency, cdn\"\nauthor: Ana Ruiz and Bo Li\n---\nA post about caches at the edge of the network.\n",
        encoding="utf-8")
    (tmp_path / "feed.jsonl").write_text(json.dumps({
        "id": "a1", "title": "Fetch", "text": "The fetch API.", "topics": ["web"], "tags": "http, web",
        "authors": [{"name": "Cy"}, "Di"], "page_type": "web-api-interface"}) + "\n", encoding="utf-8")
    arts = read_corpus(tmp_path).by_id()
    post, item = arts["caching-edge"], arts["a1"]
    assert post.topics == ["CDN", "caching", "Performance", "latency"]
    assert post.authors == ["Ana Ruiz", "Bo Li"]
    assert post.source is None  # the author is not the source
    assert item.topics == ["http", "web"] and item.authors == ["Cy", "Di"] and item.page_type == "web-api-interface"


def test_metadata_store_round_trips_tags_and_authors(tmp_path):
    from recommender.ingest.article import Article
    from recommender.store.metadata import MetadataStore, write_metadata

    path = tmp_path / "meta.sqlite"
    write_metadata(path, [Article(id="x", title="X", topics=["a"], authors=["Ann"], page_type="guide"),
                          Article(id="y", title="Y")], ["h1", "h2"])
    store = MetadataStore(path)
    x = store.by_id("x")
    assert x.topics == ("a",) and x.authors == ("Ann",) and x.page_type == "guide"
    assert store.field_counts()["authors"] == 1 and store.field_counts()["page_type"] == 1
    store.close()


def test_canonical_link_in_a_body_is_the_url_only_on_the_articles_own_site():
    from recommender.ingest.reader import parse_front_matter_article

    body = '<head><link rel="canonical" href="https://www.microsoft.com/en-us/ai/our-approach" /></head>\nText.\n'
    meta = {"slug": "2023-day6", "title": "Day 6", "image": "https://azureaidevs.github.io/hub/img/day6.png"}
    other_site, *_ = parse_front_matter_article(dict(meta), body, "blog/day6.md")[0]
    assert other_site.url is None and other_site.slug == "2023-day6" and other_site.id == "2023-day6"
    own = body.replace("https://www.microsoft.com/en-us/ai/our-approach", "https://azureaidevs.github.io/hub/day6/")
    own_site, *_ = parse_front_matter_article(dict(meta), own, "blog/day6.md")[0]
    assert own_site.url == "https://azureaidevs.github.io/hub/day6/"  # the host of its image
    named = body.replace("https://www.microsoft.com/en-us/ai/our-approach", "https://blog.example.net/2023-day6/")
    by_slug, *_ = parse_front_matter_article(dict(meta), named, "blog/day6.md")[0]
    assert by_slug.url == "https://blog.example.net/2023-day6/"  # its slug is the page's name
