"""What a site publishes: its own URLs byte for byte, no unpublished items linked, no run that blanks the links,
blog ids from the post's own slug, and words with apostrophes kept whole."""

import json
import textwrap

import numpy as np
import pytest
from types import SimpleNamespace
from click.testing import CliRunner

from recommender import Index, build_index, read_corpus
from recommender.batch.nightly import BatchError, run_batch
from recommender.cli import cli
from recommender.rank.linking import RuleColumns, collapse_duplicates, title_codes
from recommender.store.lexical import lexical_document, normalise_apostrophes
from recommender.batch.outputs import read_jsonl, read_runs
from recommender.rank.overrides import Overrides
from recommender.rank.policy import Policy, load_policy

TOPICS = {
    "space": "rocket orbit launch satellite astronaut moon telescope mission crater lander",
    "food": "bread flour oven yeast dough crust butter recipe kitchen sourdough",
}


def news(folder, name, title, topic, url, *, published=None, draft=None):
    words = TOPICS[topic].split()
    excerpt = " ".join(words[(len(name) + j) % len(words)] for j in range(30))
    flags = "".join([f"published: {published}\n" if published is not None else "",
                     f"draft: {draft}\n" if draft is not None else ""])
    (folder / f"{name}.md").write_text(
        f"---\ncategory: news\ntitle: \"{title}\"\nexcerpt: \"{excerpt}\"\nwebUrl: \"{url}\"\n"
        f"originalUrl: \"https://origin.example.org/{name}\"\n{flags}---\n")


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    news(folder, "moon-a", "Lander reaches the moon", "space", "https://www.space-desk.example.com/moon-a/")
    news(folder, "moon-b", "Astronauts train for the moon", "space", "https://space-desk.example.com/moon-b/")
    news(folder, "moon-c", "A telescope maps the crater", "space", "https://www.space-desk.example.com/Moon-C",
         published="false")
    news(folder, "moon-d", "Satellite launch slips a week", "space", "https://space-desk.example.com/moon-d/",
         draft="true")
    news(folder, "bread-a", "Sourdough for beginners", "food", "https://www.kitchen.example.net/bread-a/?ref=home")
    news(folder, "bread-b", "Butter crust recipe", "food", "https://kitchen.example.net/bread-b/",
         published="true")
    return folder


def test_outputs_carry_each_articles_own_url_byte_for_byte(site, tmp_path):
    record = run_batch(site, tmp_path / "idx", tmp_path / "out", Policy(), model="hashing", progress=False)
    assert record.status == "ok"
    lists = {item["id"]: item for item in read_jsonl(tmp_path / "out")}
    own = {"space-desk.example.com/moon-a": "https://www.space-desk.example.com/moon-a/",
           "kitchen.example.net/bread-a": "https://www.kitchen.example.net/bread-a/?ref=home",
           "space-desk.example.com/moon-b": "https://space-desk.example.com/moon-b/"}
    for article_id, url in own.items():
        assert lists[article_id]["url"] == url
    shown = {link["id"]: link["url"] for item in lists.values() for link in item["related"]}
    for article_id, url in own.items():
        if article_id in shown:
            assert shown[article_id] == url
    with Index.open(tmp_path / "idx") as index:  # any variant of the URL still finds the article
        assert index.data.get("http://space-desk.example.com/moon-a").id == "space-desk.example.com/moon-a"
        assert index.data.get("https://www.space-desk.example.com/moon-a/").url == own["space-desk.example.com/moon-a"]


def test_unpublished_and_draft_items_are_never_linked_by_default(site, tmp_path):
    corpus = read_corpus(site)
    drafts = {a.id for a in corpus.articles if a.draft}
    assert drafts == {"space-desk.example.com/Moon-C", "space-desk.example.com/moon-d"}
    record = run_batch(site, tmp_path / "idx", tmp_path / "out", Policy(), model="hashing", progress=False)
    assert record.drafts_held_back == 2
    lists = {item["id"]: item for item in read_jsonl(tmp_path / "out")}
    linked = {link["id"] for item in lists.values() for link in item["related"]}
    assert linked and not linked & drafts
    assert lists["space-desk.example.com/Moon-C"]["related"]  # a draft still gets links of its own

    with Index.open(tmp_path / "idx") as index:
        everything = {hit.id for hit in index.related("space-desk.example.com/moon-a", k=10)}
        assert not everything & drafts
        with Overrides.open(tmp_path / "idx") as store:  # not even when pinned
            store.pin("space-desk.example.com/moon-a", "space-desk.example.com/moon-d")
    with Index.open(tmp_path / "idx") as index:
        assert "space-desk.example.com/moon-d" not in {
            hit.id for hit in index.related("space-desk.example.com/moon-a", k=10)}
        with_drafts = Policy().with_links(include_drafts=True)
        assert {hit.id for hit in index.related("space-desk.example.com/moon-a", k=10, policy=with_drafts)} & drafts


def test_include_drafts_is_a_policy_key(tmp_path):
    path = tmp_path / "recommender.toml"
    path.write_text("[links]\ninclude_drafts = true\n")
    assert load_policy(path).links.include_drafts is True
    path.write_text("[links]\ninclude_drafts = 1\n")
    with pytest.raises(ValueError, match="include_drafts must be true or false"):
        load_policy(path)


def test_a_run_that_would_remove_most_of_the_index_is_refused(site, tmp_path):
    index_dir, out = tmp_path / "idx", tmp_path / "out"
    first = run_batch(site, index_dir, out, Policy(), model="hashing", progress=False)
    before = (out / "related.json").read_bytes()
    half_mounted = tmp_path / "half"
    half_mounted.mkdir()
    (half_mounted / "moon-a.md").write_text((site / "moon-a.md").read_text())
    with pytest.raises(BatchError, match=r"would remove 5 of the 6 indexed articles .*--allow-shrink"):
        run_batch(half_mounted, index_dir, out, Policy(), model="hashing", progress=False)
    assert (out / "related.json").read_bytes() == before
    with Index.open(index_dir) as index:
        assert len(index) == first.articles == 6
    runs = read_runs(out)
    assert runs[-1]["status"] == "failed" and "max_shrink" in runs[-1]["error"]

    result = CliRunner().invoke(cli, ["batch", str(half_mounted), "--index", str(index_dir), "--out", str(out),
                                      "--model", "hashing", "-q"])
    assert result.exit_code == 1 and "would remove 5 of the 6" in result.output
    assert len(result.output.strip().splitlines()) == 1

    result = CliRunner().invoke(cli, ["batch", str(half_mounted), "--index", str(index_dir), "--out", str(out),
                                      "--model", "hashing", "-q", "--allow-shrink", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] == 5


def test_a_small_removal_is_allowed_and_the_share_is_a_policy_key(site, tmp_path):
    index_dir, out = tmp_path / "idx", tmp_path / "out"
    run_batch(site, index_dir, out, Policy(), model="hashing", progress=False)
    (site / "bread-b.md").unlink()  # 1 of 6: under the default 20%
    assert run_batch(site, index_dir, out, Policy(), model="hashing", progress=False).removed == 1
    (site / "bread-a.md").unlink()
    strict = Policy().with_section("batch", max_shrink=0.1)
    with pytest.raises(BatchError, match="max_shrink = 10%"):
        run_batch(site, index_dir, out, strict, model="hashing", progress=False)


def test_blog_post_id_is_its_slug_not_the_page_its_canonical_link_names(tmp_path):
    (tmp_path / "post.md").write_text(textwrap.dedent("""\
        ---
        slug: 2023-day6
        title: "The Mission of Responsible AI"
        authors: ['Ruth']
        draft: false
        ---

        <head>
          <link rel="canonical" href="https://www.microsoft.com/en-us/ai/our-approach"  />
        </head>

        Why you should care about responsible AI, and what a developer can do about it this week.
        """))
    post = read_corpus(tmp_path).articles[0]
    assert post.id == "2023-day6"
    assert post.authors == ["Ruth"] and post.source is None
    assert post.url is None  # its only URL, a canonical link to a general page of another site, is not its own
    assert not post.draft


def test_jsonl_keeps_its_url_and_draft_flags(tmp_path):
    (tmp_path / "feed.jsonl").write_text(
        json.dumps({"id": "a", "title": "One", "text": "alpha beta", "url": "https://WWW.Example.com/a/"}) + "\n"
        + json.dumps({"id": "b", "title": "Two", "text": "alpha gamma", "status": "draft"}) + "\n")
    found = read_corpus(tmp_path).by_id()
    assert found["a"].url == "https://WWW.Example.com/a/" and found["a"].canonical == "https://example.com/a"
    assert found["b"].draft and not found["a"].draft


def test_apostrophes_do_not_split_words():
    text = lexical_document("Python’s typing", "Don’t panic: we’ve said it's fine, you'll see")
    assert text == "Python typing \nDont panic: weve said it fine, youll see"
    assert normalise_apostrophes(normalise_apostrophes("O’Neil’s")) == "ONeil"


def test_shared_terms_hold_no_apostrophe_fragments(tmp_path):
    lines = [{"id": f"n{i}", "title": f"Note {i}",
              "text": ("We’ve found that you’ll see it’s the system’s fault, don’t worry" if i % 3 == 0 else
                       "plain words only here") + f" topic{i % 2} again"}
             for i in range(6)]
    (tmp_path / "feed.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    build_index(tmp_path / "feed.jsonl", tmp_path / "idx", model="hashing", progress=False)
    with Index.open(tmp_path / "idx") as index:
        vocabulary = set(index.data.lexical.vocabulary)
        assert not vocabulary & {"s", "ve", "t", "ll", "don"}
        assert {"weve", "youll", "dont"} <= vocabulary


def _unit(*parts):
    v = np.array(parts, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_syndicated_copies_with_one_title_collapse_to_the_original():
    titles = ["Microsoft fleshes out Power Apps", "Microsoft fleshes out Power Apps",
              "Microsoft fleshes out Power Apps", "Power Apps pricing explained", "Syntax", "Syntax",
              "Microsoft fleshes out Power Apps"]
    vectors = np.stack([_unit(1, 0.6, 0, 0), _unit(1, 0.2, 0, 0),  # one story, two excerpts: cosine ~0.9
                        _unit(0, 0, 1, 0),  # same title, different text: not a copy
                        _unit(1, 0.2, 0.3, 0),  # close text, different title: not a copy
                        _unit(0, 1, 0, 0.2), _unit(0, 1, 0.5, 0),  # short titles never make copies by title
                        _unit(1, 0.4, 0, 0.5)])  # the query: its own title, text close to rows 0 and 1
    infos = [SimpleNamespace(id=f"a{i}", source=None, published=f"2024-01-0{i + 1}", title=t, draft=False)
             for i, t in enumerate(titles)]
    facts = RuleColumns.from_infos(infos)
    sims = vectors @ vectors.T
    assert sims[0, 1] < 0.98 and sims[6, 0] < 0.98 and sims[6, 1] < 0.98  # vectors alone would not collapse them
    assert sims[1, 3] > 0.8 and sims[4, 5] > 0.8 and sims[6, 3] > 0.8
    rows = np.array([1, 0, 2, 3, 4, 5])
    score = np.linspace(6, 1, 6)
    kept, _ = collapse_duplicates(rows, score, vectors, facts, 0.98, vectors[6], query_row=6)
    assert list(kept) == [2, 3, 4, 5]  # rows 0 and 1 are copies of the query itself
    kept, kept_score = collapse_duplicates(rows, score, vectors, facts, 0.98, None)
    assert list(kept) == [0, 2, 3, 4, 5] and kept_score[0] == 6  # the earlier copy takes the better slot
    assert list(title_codes(["A b c", "a, B  c!", "Syntax", "x y"])) == [0, 0, -1, -1]
