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
    (tmp_path / "c" / "sitemap.xml").write_text('<?xml version="1.0"?>\n<urlset><url><loc>x</loc></url></urlset>\n')
    result = invoke(runner, "index", tmp_path / "c", "--index", tmp_path / "idx", "--model", "hashing")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ignored"] == 2
    assert "ignored 2 files (README files, XML that is not a feed, and extensions other than .atom .jsonl .markdown " \
           ".md .mdx .ndjson .rss .text .txt .xml are not read): notes.pdf, sitemap.xml" in result.stderr


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


def test_bad_input_is_one_line_but_a_bug_shows_its_traceback(runner, hashing_index, monkeypatch):
    """Bad input (InputError and its kinds) is a one-line error; any other ValueError (a NumPy shape mismatch
    deep in the ranking, say) is a bug and keeps its traceback instead of passing for bad input."""
    import numpy as np

    from recommender.rank.index import Index

    result = invoke(runner, "search", "  ", "--index", hashing_index)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "Error: empty search text\n")
    monkeypatch.setattr(Index, "search", lambda self, *args, **kwargs: np.ones(3) @ np.ones(4))
    with pytest.raises(ValueError, match="mismatch"):
        invoke(runner, "search", "sourdough", "--index", hashing_index)


def test_a_partial_id_or_url_gets_the_ids_it_may_mean(runner, hashing_index):
    for ref in ("energy-desk", "https://www.energy-desk.example.com/2024/"):
        result = invoke(runner, "related", ref, "--index", hashing_index)
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.strip().endswith(
            "closest ids: energy-desk.example.com/2024/06/11/wind-record-engineers, "
            "energy-desk.example.com/2024/05/02/grid-batteries-desert-town")


def test_explain_prints_arithmetic_that_gives_the_score(runner, hashing_index, tmp_path):
    import re

    policy = tmp_path / "weights.toml"  # weights that do not sum to 1, so the division by their sum shows
    policy.write_text("[ranking]\ndense = 0.5\nwindow = 0\nlexical = 1.0\nmention = 0\n" + EVERY_TARGET + "min_score = 0\n")
    result = invoke(runner, "related", "text/marathon", "--index", hashing_index, "--policy", policy, "--explain")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    scores = [float(line.split()[1]) for line in lines[3:] if line[:1].isdigit() and "." not in line.split()[0]]
    formulas = [line for line in lines if line.strip().startswith("score = ")]
    assert scores and len(formulas) == len(scores)
    for score, line in zip(scores, formulas):
        terms, norm, shown = re.fullmatch(r"\s*score = \((.*)\) / ([\d.]+) = ([\d.-]+)", line).groups()
        parts = [re.fullmatch(r"([\d.]+) x \w+ z ([\d.-]+)", t).groups() for t in terms.split(" + ")]
        assert float(norm) == 1.5 == sum(float(w) for w, _ in parts)
        assert float(shown) == score
        assert abs(sum(float(w) * float(z) for w, z in parts) / float(norm) - score) <= 0.001


def test_train_and_the_batch_need_the_policys_number_of_lists(runner, hashing_index, tmp_path):
    from recommender.evaluate.training import train_if_due
    from recommender.rank.policy import load_policy

    policy = tmp_path / "few.toml"
    policy.write_text("[ranking]\nlearned = \"on\"\ntrain_min_lists = 7\n")
    said = "2 curated lists, at least 7 are needed to learn a ranking ([ranking] train_min_lists is 7)"
    result = invoke(runner, "train", "--index", hashing_index, "--policy", policy)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {hashing_index}: {said}; the default ranking stays"
    assert train_if_due(hashing_index, load_policy(policy))["reason"] == said  # the batch's training step


def test_a_new_index_in_the_default_folder_is_announced(runner, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_INDEX", raising=False)
    monkeypatch.chdir(tmp_path)
    said = "no --index and no $RECOMMENDER_INDEX: creating a new index in ./recommender-index"
    first = invoke(runner, "index", corpus_dir, "--model", "hashing")
    assert first.exit_code == 0 and said in first.stderr and (tmp_path / "recommender-index").is_dir()
    assert said not in invoke(runner, "index", corpus_dir, "--model", "hashing").stderr  # it exists now
    given = invoke(runner, "batch", corpus_dir, "--out", "out", "--index", "elsewhere", "--model", "hashing")
    assert given.exit_code == 0 and "no --index" not in given.stderr
    monkeypatch.setenv("RECOMMENDER_INDEX", str(tmp_path / "env-index"))
    assert "no --index" not in invoke(runner, "index", corpus_dir, "--model", "hashing").stderr


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
    table = invoke(runner, "info", "--index", hashing_index).stdout.splitlines()
    assert not [line for line in table if "{" in line or "'" in line]  # no Python dict or repr
    counts = ", ".join(f"{field} {n}" for field, n in info["articles_with"].items())
    assert ["articles_with", counts] in [line.split(None, 1) for line in table]
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
