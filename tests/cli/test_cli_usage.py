"""The command line as documented: -q, -v and --index on every command (before or after it), `list`, whole
table cells off a terminal, and the small messages (verify passed, no overrides, file not found, plurals)."""

import json
import re
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from recommender.store.catalog import list_articles
from recommender.cli import cli
from recommender.batch.runrecord import RunRecord, render_run
from recommender.common.render import plural, table

NO_INDEX = {"policy"}  # the commands that touch no index
QUICK_RUNS = {"info": [], "list": [], "overrides": [], "related": ["text/marathon"], "search": ["sourdough"],
              "policy": [], "check": [], "evaluate": ["--baseline", "tfidf"]}


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, env=env)


def test_every_command_takes_quiet_verbose_and_index_and_has_help():
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help text"
        opts = {opt for param in command.params for opt in param.opts}
        assert {"-q", "--quiet", "-v", "--verbose"} <= opts, name
        assert ("--index" in opts) == (name not in NO_INDEX), name
        after = ["-q", "-v"] + ([] if name in NO_INDEX else ["--index", "somewhere"])
        result = invoke("-q", "-v", "--index", "somewhere", name, *after, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output, (name, result.output)


@pytest.mark.parametrize("name", sorted(QUICK_RUNS))
def test_commands_run_with_quiet_and_index_after_or_before(hashing_index, name):
    args = QUICK_RUNS[name]
    index = [] if name in NO_INDEX else ["--index", hashing_index]
    after = invoke(name, *args, *index, "-q")
    assert after.exit_code == 0, after.output
    before = invoke("-q", *index, name, *args)
    assert before.exit_code == 0, before.output
    def same(out: str) -> str:  # elapsed seconds ("corpus of 11, 0.1 s") vary between the two runs
        return re.sub(r"\d+\.\d+ ?s\b", "S", out).replace(" ", "")[:200]

    assert same(before.stdout) == same(after.stdout)
    if name in {"info", "list", "related", "overrides", "policy"}:  # results only
        assert after.stderr == "" and before.stderr == ""


def test_index_given_on_the_command_wins_then_before_it_then_the_environment(hashing_index, tmp_path):
    env = {"RECOMMENDER_INDEX": str(tmp_path / "none")}
    assert invoke("info", "--json", env=env).exit_code == 1
    assert json.loads(invoke("--index", hashing_index, "info", "--json", env=env).stdout)["articles"] == 11
    assert invoke("--index", hashing_index, "info", "--index", tmp_path / "none", env=env).exit_code == 1
    assert invoke("--index", tmp_path / "none", "info", "--index", hashing_index, env=env).exit_code == 0


def test_verbose_after_the_command_sets_debug_and_quiet_wins(hashing_index):
    invoke("info", "--index", hashing_index, "-v")
    assert logging.getLogger("recommender").level == logging.DEBUG
    invoke("info", "--index", hashing_index, "-v", "-q")
    assert logging.getLogger("recommender").level == logging.WARNING


def test_list_filters_and_prints_ids_titles_dates_urls(hashing_index):
    everything = list_articles(hashing_index)
    assert len(everything) == 11
    found = list_articles(hashing_index, match="SOURDOUGH")
    assert [a.id for a in found] == ["weekend-sourdough"]
    dated = list_articles(hashing_index, since="2025-01-01", order="date")
    assert dated and all(a.published >= "2025-01-01" for a in dated)
    assert [a.published for a in dated] == sorted((a.published for a in dated), reverse=True)
    assert len(list_articles(hashing_index, limit=3)) == 3
    assert {a.kind for a in list_articles(hashing_index, kind="text")} == {"text"}

    result = invoke("list", "--index", hashing_index, "--match", "rover", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [{"id": "feed/rover-landing", "title": "Rover lands near an ancient river delta",
                      "url": "https://space-wire.example.com/rover-delta", "published": "2025-02-18T20:55:00Z",
                      "source": "Space Wire", "kind": "jsonl"}]
    assert "1 of 11 articles" in result.stderr
    table_out = invoke("list", "--index", hashing_index, "--match", "rover").stdout.splitlines()
    assert table_out[0].split() == ["id", "title", "date", "url"]
    assert table_out[2].split()[0] == "feed/rover-landing" and "2025-02-18" in table_out[2]
    bad = invoke("list", "--index", hashing_index, "--since", "yesterday")
    assert bad.exit_code == 1 and "--since 'yesterday'" in bad.stderr


def test_list_reads_metadata_only(hashing_index):
    code = ("import sys\nfrom recommender.cli import cli\n"
            f"try:\n    cli(['list', '--index', {str(hashing_index)!r}, '-q'])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('LOADED', 'faiss' in sys.modules, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED False False" in out


def test_tables_are_cut_on_a_terminal_only():
    rows = [("a" * 80,)]
    assert table(rows, ["x"], [20]).splitlines()[2] == "a" * 19 + "…"
    assert table(rows, ["x"], [20], wide=True).splitlines()[2] == "a" * 80


def test_related_output_off_a_terminal_keeps_whole_cells(hashing_index, lexical_policy):
    args = ["related", "power-notes.example.org/home-batteries-paying-off", "--index", hashing_index, "-k", "10",
            "--policy", lexical_policy]
    text = invoke(*args).stdout
    results = json.loads(invoke(*args, "--json").stdout)["related"]
    assert len(results) >= 2
    for r in results:  # not a terminal: every title and URL whole, however long
        assert r["title"] in text and (r["url"] or r["id"]) in text
    assert max(len(r["title"]) for r in results) > 70  # longer than the terminal cut


def test_info_verify_says_it_passed_and_fails_on_damage(hashing_index, tmp_path):
    result = invoke("info", "--index", hashing_index, "--verify")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith("verify: passed, ") and "files" in result.stdout.splitlines()[-1]
    files = len(json.loads((Path(hashing_index) / "manifest.json").read_text())["files"])
    assert json.loads(invoke("info", "--index", hashing_index, "--verify", "--json").stdout)["verified"]["files"] == files
    assert f"verify: passed, {files} files" in result.stdout
    assert "verify" not in invoke("info", "--index", hashing_index).stdout
    damaged = tmp_path / "idx"
    shutil.copytree(hashing_index, damaged)
    metadata = damaged / json.loads((damaged / "manifest.json").read_text())["files"]["metadata"]["name"]
    with open(metadata, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00damage")
    result = invoke("info", "--index", damaged, "--verify")
    assert result.exit_code == 1 and "does not match its checksum" in result.stderr


def test_overrides_says_when_there_are_none(hashing_index, tmp_path):
    result = invoke("overrides", "--index", hashing_index)  # stdout: one override a line; the remark: stderr
    assert result.exit_code == 0 and result.stdout == "" and result.stderr.startswith("no overrides in ")
    assert invoke("overrides", "--index", hashing_index, "--json").stdout == ""
    assert invoke("overrides", "--index", hashing_index, "-q").stderr == ""
    assert invoke("overrides", "--index", tmp_path / "none").exit_code == 1
    folder = tmp_path / "idx"
    shutil.copytree(hashing_index, folder)
    assert invoke("pin", "text/marathon", "feed/rover-landing", "--index", folder, "-q").exit_code == 0
    listed = invoke("overrides", "--index", folder)
    assert listed.stdout == "pin    text/marathon  ->  feed/rover-landing\n"
    assert listed.stderr == f"1 override in {folder}\n"


def test_a_missing_file_is_file_not_found_not_no_article(hashing_index, tmp_path):
    for query in ["./no-such-post.md", str(tmp_path / "gone.txt"), "drafts/post.markdown"]:
        result = invoke("related", query, "--index", hashing_index)
        assert result.exit_code == 1 and result.stderr == f"Error: file not found: {query}\n"
    unknown = invoke("related", "text/maraton", "--index", hashing_index)
    assert unknown.stderr.startswith("Error: no article 'text/maraton'")


def test_plurals():
    assert [plural(n, "article") for n in (0, 1, 2)] == ["0 articles", "1 article", "2 articles"]
    assert plural(1, "query", "queries") == "1 query" and plural(3, "query", "queries") == "3 queries"
    text = render_run(RunRecord(started="", status="ok", corpus="c", index="i", out="o", engine="local", articles=1,
                                links=1, evaluation={"gold": "g", "queries": 1, "system": {"mrr": 1.0}}))
    assert text.startswith("batch ok: 1 article, 1 link written to o") and "(1 query):" in text
