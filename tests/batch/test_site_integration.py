"""The site integration documented in docs/site-integration.md is the real one: the key path its Hugo and Jekyll
snippets use is the file the shipped schedules write, keyed the way the snippets look it up; where Hugo is
installed, a site built with the documented partial shows the links."""

import json
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
    used = set(re.findall(r"\.(title|url|path)\b", snippet))
    assert used == {"title", "url", "path"}
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
    assert data["/rover-delta"] and data["/text/match-report/"]  # a URL's path; /ID/ for an article without URL


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
    pages = {"rover.md": "url: /rover-delta\n",  # a URL without the trailing slash Hugo adds
             "text/match-report.md": ""}  # an article without URL: Hugo's own address of content/ID.md
    for name, front in pages.items():
        (site / "content" / name).parent.mkdir(parents=True, exist_ok=True)
        (site / "content" / name).write_text(f"---\ntitle: page\n{front}---\ntext\n")
    proc = subprocess.run(["hugo", "--quiet", "-s", str(site)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for key, html in (("/rover-delta", "rover-delta/index.html"),
                      ("/text/match-report/", "text/match-report/index.html")):
        page = (site / "public" / html).read_text()
        assert data[key] and all(link["title"] in page for link in data[key]), page


def test_site_data_follows_the_outputs_when_they_are_reused(tmp_path, corpus_dir):
    from recommender.batch.nightly import run_batch

    site_file = tmp_path / "site" / "data" / "related.json"
    first = run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", None, links={"k": 3}, site_data=site_file,
                      model="hashing", progress=False)
    assert first["by_path"] == {"keys": 11, "from_ids": 4, "shared_paths": 0}
    written = site_file.read_bytes()
    assert written == (tmp_path / "out" / "related_by_path.json").read_bytes()
    site_file.unlink()  # the site's copy lost (a fresh checkout of the site, say): the next run puts it back
    again = run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", None, links={"k": 3}, site_data=site_file,
                      model="hashing", progress=False)
    assert again["outputs_reused"] and again["site_data"] == str(site_file) and site_file.read_bytes() == written
