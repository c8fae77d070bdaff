"""The site integration documented in docs/site-integration.md is the real one: the key path its Hugo and Jekyll
snippets use is the file the shipped schedules write, keyed the way the snippets look it up; where Hugo is
installed, a site built with the documented partial shows the links."""

import json
from html import unescape
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.batch.outputs import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "site-integration.md"
SCHEDULES = ["nightly.cron", "recommender-batch.service"]
HUGO_DATA_SUFFIXES = {".json", ".toml", ".yaml", ".yml", ".xml"}  # what Hugo accepts in data/


def doc_block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, f"expected one {language} block in {DOC.name}"
    return blocks[0]


def schedule_args(script: str) -> list[str]:
    text = (ROOT / "scripts" / script).read_text()
    line = next(l for l in text.splitlines() if "recommender batch" in l and not l.startswith("#"))
    return shlex.split(line.split("bin/recommender", 1)[1].split(">>")[0])


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def run_schedule(script: str, site: Path, corpus: Path) -> list[str]:
    """The schedule's command with /srv/site/ moved to `site` and content/ to `corpus`, on the hashing model."""
    args = [str(site / a[len("/srv/site/"):]) if a.startswith("/srv/site/") else a for a in schedule_args(script)]
    args = [str(corpus) if a == "content/" else a for a in args]
    result = CliRunner().invoke(cli, args + ["--model", "hashing"])
    assert result.exit_code == 0, result.output
    return args


def hugo_key() -> list[str]:
    """The documented key path under .Site.Data, e.g. ["related"]; ["related", "related"] would be
    data/related/related.json."""
    return re.search(r"\.Site\.Data((?:\.\w+)+)", doc_block("go-html-template")).group(1).strip(".").split(".")


def test_the_doc_shows_the_schedules_command():
    documented = shlex.split(doc_block("sh").replace("\\\n", " "))
    for script in SCHEDULES:
        assert documented[1:] == schedule_args(script), f"{DOC.name} and scripts/{script} disagree"


@pytest.mark.parametrize("script", SCHEDULES)
def test_documented_key_path_is_the_file_the_schedule_writes(tmp_path, corpus_dir, script):
    snippet = doc_block("go-html-template")
    key = hugo_key()
    assert "index $related .RelPermalink" in snippet
    used = set(re.findall(r"\.(title|href|url|path)\b", snippet))
    assert used == {"title", "href"}
    liquid = doc_block("liquid")
    assert re.search(r"site\.data((?:\.\w+)+)\[page\.url\]", liquid).group(1).strip(".").split(".") == key
    assert set(re.findall(r"link\.(\w+)", liquid)) <= used

    site = tmp_path / "site"
    args = run_schedule(script, site, corpus_dir)
    data_file = site.joinpath("data", *key[:-1], f"{key[-1]}.json")  # .Site.Data.a.b is data/a/b.json
    assert Path(option(args, "--site-data")) == data_file
    assert not (site / "data").resolve() in Path(option(args, "--out")).resolve().parents
    for path in (site / "data").rglob("*"):  # Hugo stops the build on any other file in data/
        assert path.suffix in HUGO_DATA_SUFFIXES or path.name.startswith("."), path

    data = json.loads(data_file.read_text())
    lines = list(read_jsonl(Path(option(args, "--out"))))
    assert len(data) == len(lines) == 11
    for line in lines:
        path = urlsplit(line["url"]).path if line["url"] else f"/{line['id']}/"
        links = data[path]
        assert [l["title"] for l in links] == [r["title"] for r in line["related"]]
        assert [l["url"] for l in links] == [r["url"] for r in line["related"]]
        for link in links:
            assert used <= set(link) and link["path"].startswith("/")
    assert "/rover-delta" in data and data["/text/match-report/"]  # a URL's path; /ID/ for an article without URL


def test_the_jekyll_snippet_escapes_what_it_prints():
    # Liquid prints a value as it is (Hugo's templates escape by themselves): a title such as
    # `<img src=x onerror=alert(1);//` (an unclosed tag, which the ingest's markup stripping keeps) or a URL with a
    # `"` in it would run script on the site's pages
    printed = re.findall(r"{{(.*?)}}", doc_block("liquid"))
    assert len(printed) == 2 and all(re.fullmatch(r"\s*link\.\w+\s*\|\s*escape\s*", p) for p in printed), printed


@pytest.mark.skipif(shutil.which("hugo") is None, reason="hugo is not installed: scripts/install-test-tools installs it (needs root apt-get)")
def test_hugo_renders_the_documented_partial(tmp_path, corpus_dir):
    site = tmp_path / "site"
    args = run_schedule("nightly.cron", site, corpus_dir)
    data = json.loads(Path(option(args, "--site-data")).read_text())
    (site / "hugo.toml").write_text('baseURL = "https://example.org/"\ntitle = "t"\n'
                                    'disableKinds = ["taxonomy", "term", "RSS", "sitemap"]\n')
    (site / "layouts" / "partials").mkdir(parents=True)
    (site / "layouts" / "partials" / "related.html").write_text(doc_block("go-html-template"))
    (site / "layouts" / "_default").mkdir()
    (site / "layouts" / "_default" / "single.html").write_text('{{ partial "related.html" . }}')
    (site / "layouts" / "_default" / "list.html").write_text("list")
    pages = {"offshore.md": "url: /records/offshore-week\n",  # a URL without the trailing slash Hugo adds
             "text/match-report.md": ""}  # an article without URL: Hugo's own address of content/ID.md
    for name, front in pages.items():
        (site / "content" / name).parent.mkdir(parents=True, exist_ok=True)
        (site / "content" / name).write_text(f"---\ntitle: page\n{front}---\ntext\n")
    proc = subprocess.run(["hugo", "--quiet", "-s", str(site)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for key, html in (("/records/offshore-week", "records/offshore-week/index.html"),
                      ("/text/match-report/", "text/match-report/index.html")):
        page = (site / "public" / html).read_text()
        assert data[key] and all(link["title"] in page for link in data[key]), page


def test_site_data_follows_the_outputs_when_they_are_reused(tmp_path, corpus_dir):
    from recommender.batch.nightly import run_batch

    site_file = tmp_path / "site" / "data" / "related.json"
    first = run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", None, links={"k": 3}, site_data=site_file,
                      model="hashing", progress=False)
    assert first.by_path == {"key": "url", "keys": 11, "from_ids": 4, "without_page": 0, "collisions": 0}
    written = site_file.read_bytes()
    assert written == (tmp_path / "out" / "related_by_path.json").read_bytes()
    site_file.unlink()  # the site's copy lost (a fresh checkout of the site, say): the next run puts it back
    again = run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", None, links={"k": 3}, site_data=site_file,
                      model="hashing", progress=False)
    assert again.outputs_reused and again.site_data == str(site_file) and site_file.read_bytes() == written


NEWS = [  # an aggregator's items in the seeds' format: webUrl is the source's address, not the site's page
    ("comet-tail", "It's back: a bright comet's tail over the western sky", "https://night-sky.example.org/2024/10/comet/",
     "comet tail western sky sunset binoculars naked eye astronomers"),
    ("comet-photos", "How to photograph the comet: tripod, wide lens, long exposure",
     "https://photo-weekly.example.com/comet-photography?ref=home", "comet photograph tripod exposure sky binoculars"),
    ("telescope-guide", "Choosing a first telescope for the back garden", "https://star-party.example.net/blog/telescope/",
     "telescope aperture sky comet astronomers garden"),
    ("video-comet", "Watch: the comet over the mountains in time-lapse", "https://www.youtube.com/watch?v=abc123",
     "comet time-lapse video mountains sky tail"),
    ("video-eclipse", "Watch: the eclipse from a plane window", "https://www.youtube.com/watch?v=xyz789",
     "eclipse sky video plane astronomers sun"),
    ("rates-fall", "Mortgage rates fall for a third month", "https://money-desk.example.com/rates/fall",
     "mortgage rates lenders borrowers bank fixed deals"),
    ("rates-lenders", "Lenders cut fixed mortgage deals as the bank holds rates", "https://finance.example.org/lenders",
     "lenders mortgage fixed deals bank rates borrowers"),
    ("savings-renters", "Renters struggle to save for a deposit", "https://money-desk.example.com/renters/savings",
     "renters deposit savings mortgage borrowers rates"),
]


def write_news(folder: Path) -> None:
    for name, title, url, words in NEWS:
        text = " ".join([words] * 3)
        (folder / f"{name}.md").write_text(
            f'---\ncategory: news\ntitle: "{title}"\nexcerpt: "{text}"\npublishedDateTime: 2024-10-10T19:00:00Z\n'
            f'originalUrl: "{url}"\nwebUrl: "{url}"\ntype: article\nprovider:\n  name: Source\n'
            f"  domain: {url.split('/')[2]}\ntopics:\n  - News\nrelated:\n  - title: \"A curated stub about {words.split()[0]}\"\n"
            f'    excerpt: "{words}"\n    webUrl: "https://elsewhere.example.net/{name}/"\n---\n', encoding="utf-8")


@pytest.mark.skipif(shutil.which("hugo") is None, reason="hugo is not installed: scripts/install-test-tools installs it (needs root apt-get)")
@pytest.mark.parametrize("site_policy, permalinks", [
    ('key = "file"', ""),  # Hugo's default address: /posts/<file name>/
    ('key = "permalink"\npermalink = "/news/:slug/"', '[permalinks]\nposts = "/news/:slug/"\n'),  # slug from title
])
def test_hugo_shows_links_on_every_aggregator_page(tmp_path, site_policy, permalinks):
    site = tmp_path / "site"
    (site / "content" / "posts").mkdir(parents=True)
    write_news(site / "content" / "posts")
    (site / "recommender.toml").write_text(f"[site]\n{site_policy}\n")
    (site / "hugo.toml").write_text('baseURL = "https://example.org/"\ntitle = "t"\n'
                                    'disableKinds = ["taxonomy", "term", "RSS", "sitemap"]\n' + permalinks)
    (site / "layouts" / "partials").mkdir(parents=True)
    (site / "layouts" / "partials" / "related.html").write_text(doc_block("go-html-template"))
    (site / "layouts" / "_default").mkdir()
    (site / "layouts" / "_default" / "single.html").write_text('{{ partial "related.html" . }}')
    (site / "layouts" / "_default" / "list.html").write_text("list")
    data_file = site / "data" / "related.json"
    result = CliRunner().invoke(cli, ["batch", str(site / "content"), "--index", str(tmp_path / "idx"),
                                      "--out", str(tmp_path / "out"), "--site-data", str(data_file),
                                      "--policy", str(site / "recommender.toml"), "--model", "hashing", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(data_file.read_text())
    proc = subprocess.run(["hugo", "--quiet", "-s", str(site)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pages = {"/" + p.parent.relative_to(site / "public").as_posix() + "/": p.read_text()
             for p in (site / "public").rglob("index.html") if len(p.parent.relative_to(site / "public").parts) > 1}
    assert len(pages) == len(NEWS) and set(data) == set(pages)  # every page has its key, no key without page
    with_links = [key for key in pages if data[key]]
    assert len(with_links) >= len(NEWS) - 2, data  # the hashing model finds a few weak lists empty
    shown = 0
    for key in with_links:
        html = pages[key]
        for link in data[key]:
            assert link["title"] in unescape(html), (key, link["title"])
            assert link["href"] in pages, link  # a page of the site: no curated stub, no external address
            assert f'href="{link["href"]}"' in html
            shown += 1
    assert shown >= len(NEWS)
