import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from conftest import EVERY_TARGET


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_every_command_has_help(runner):
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help text"
        result = invoke(runner, name, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_index_then_related_json(runner, corpus_dir, tmp_path):
    idx = tmp_path / "idx"
    result = invoke(runner, "index", corpus_dir, "--index", idx, "--model", "hashing", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["articles"] == 11 and summary["embedded"] == 11 and summary["skipped"] == 2
    assert "skipped feed.jsonl:4: invalid JSON" in result.stderr
    assert summary["ignored"] == 0
    result = invoke(runner, "related", "text/match-report", "--index", idx, "-k", "3", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["query"]["id"] == "text/match-report"
    assert 1 <= len(data["related"]) <= 3
    assert set(data["related"][0]) == {"id", "score", "title", "url", "published", "source", "kind", "pinned",
                                       "topics", "authors", "page_type", "parts"}
    assert set(data["related"][0]["parts"]) == {"dense", "window", "lexical", "mention"}


def test_index_counts_and_names_ignored_files(runner, corpus_dir, tmp_path):
    import shutil

    shutil.copytree(corpus_dir, tmp_path / "c")
    (tmp_path / "c" / "notes.pdf").write_bytes(b"%PDF-1.4")
    result = invoke(runner, "index", tmp_path / "c", "--index", tmp_path / "idx", "--model", "hashing")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ignored"] == 1
    assert "ignored 1 file (README files and extensions other than .jsonl .markdown .md .mdx .ndjson .text .txt " \
           "are not read): notes.pdf" in result.stderr


def test_related_table_by_url_and_env_index(runner, hashing_index, monkeypatch, tmp_path):
    monkeypatch.setenv("RECOMMENDER_INDEX", str(hashing_index))
    every = tmp_path / "every.toml"  # its best link is a plain-text article, which the default targets leave out
    every.write_text(EVERY_TARGET)
    result = invoke(runner, "related", "https://www.space-wire.example.com/rover-delta/", "-k", "1", "--policy", every)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "related to feed/rover-landing: Rover lands near an ancient river delta"
    assert lines[1].split() == ["#", "score", "title", "source", "date", "url", "or", "id"]
    assert len(lines) == 4


def test_related_for_a_file_not_in_the_index(runner, hashing_index, tmp_path):
    article = tmp_path / "new.txt"
    article.write_text("Station crew news\nFour astronauts opened the hatch and began experiments in orbit.\n")
    result = invoke(runner, "related", article, "--index", hashing_index, "-k", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["related"][0]["id"] == "feed/orbit-station"


def test_unknown_id_is_a_one_line_user_error(runner, hashing_index):
    result = invoke(runner, "related", "text/maraton", "--index", hashing_index)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: no article 'text/maraton' in the index; closest ids: text/marathon")


def test_missing_index_and_bad_usage_exit_codes(runner, tmp_path):
    result = invoke(runner, "info", "--index", tmp_path / "none")
    assert result.exit_code == 1 and "no index here" in result.stderr
    assert invoke(runner, "related").exit_code == 2
    assert invoke(runner, "related", "x", "-k", "0").exit_code == 2
    assert invoke(runner, "no-such-command").exit_code == 2


def test_info_and_search(runner, hashing_index):
    result = invoke(runner, "info", "--index", hashing_index, "--json")
    info = json.loads(result.stdout)
    assert info["articles"] == 11 and info["model"] == "hashing:256" and info["dimension"] == 256
    assert info["size_bytes"] > 0 and info["built_at"].endswith("Z")
    result = invoke(runner, "search", "sourdough starter flour dough", "--index", hashing_index, "--json", "-k", "1")
    assert json.loads(result.stdout)["related"][0]["id"] == "weekend-sourdough"


def test_related_by_id_does_not_import_torch(hashing_index):
    code = (
        "import sys\n"
        "from recommender.cli import cli\n"
        f"try:\n    cli(['related', 'text/marathon', '--index', {str(hashing_index)!r}, '-q'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('TORCH', 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "TORCH False False" in out
