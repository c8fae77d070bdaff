"""Policy values that make no sense are refused in one line naming the file and the key, by the loader as by
the command line; a batch refused for its policy is recorded like any failed run."""

import json

import pytest
from click.testing import CliRunner

from recommender.batch.nightly import BatchError, run_batch
from recommender.cli import cli
from recommender.batch.outputs import read_jsonl, read_runs
from recommender.rank.policy import PolicyError, load_policy

BAD = [
    ("[links]\nmin_score = -0.5\n", "[links] min_score must be at least 0 on the score scale"),
    ("[links]\nmax_age_days = 0\n", "[links] max_age_days must be more than 0"),
    ("[links]\nmax_age_days = -30\n", "[links] max_age_days must be more than 0"),
    ("[links]\nk = 0\n", "[links] k must be at least 1"),
    ("[links]\nk = 5000\n", "[links] k must be at most 1000"),
    ("[links]\ntopic_bonus = -1\n", "[links] topic_bonus must not be negative"),
    ("[ranking]\nlexical = -0.2\n", "[ranking] lexical must not be negative"),
    ("[ranking]\ndense = 0\nwindow = 0\nlexical = 0\nmention = 0\n", "[ranking] needs at least one positive weight"),
    ("[ranking]\ncandidates = 0\n", "[ranking] candidates must be at least 1"),
    ("[links]\nmin_score = nan\n", "[links] min_score must be a finite number"),
    ("[recency]\nhalf_life_days = inf\n", "[recency] half_life_days must be a finite number"),
    ("[recency]\nhalf_life_days = -1\n", "[recency] half_life_days must not be negative"),
    ("[duplicates]\nthreshold = 0\n", "[duplicates] threshold must be in (0, 1]"),
    ("[diversity]\nmmr_lambda = 1.5\n", "[diversity] mmr_lambda must be between 0 and 1"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_the_loader_refuses_values_that_make_no_sense(tmp_path, text, message):
    path = tmp_path / "recommender.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: {message}") and "\n" not in str(caught.value)
    result = CliRunner().invoke(cli, ["policy", "--policy", str(path)])
    assert result.exit_code == 1 and result.stderr == f"Error: {caught.value}\n"


def test_sensible_values_load(tmp_path):
    path = tmp_path / "recommender.toml"
    path.write_text("[links]\nmin_score = 0\nmax_age_days = 0.5\nk = 1000\n[ranking]\ndense = 1\nlexical = 0\n")
    policy = load_policy(path)
    assert (policy.links.min_score, policy.links.max_age_days, policy.links.k) == (0, 0.5, 1000)


def test_the_command_line_refuses_the_same_values(tmp_path, corpus_dir):
    base = ["batch", str(corpus_dir), "--index", str(tmp_path / "idx"), "--out", str(tmp_path / "out"),
            "--model", "hashing", "-q"]
    for extra in (["--min-score", "-0.5"], ["--max-age-days", "0"], ["-k", "0"]):
        result = CliRunner().invoke(cli, base + extra)
        assert result.exit_code == 2, extra
    assert not (tmp_path / "out").exists()


def test_a_batch_refused_for_its_policy_is_recorded_without_a_class_name(tmp_path, corpus_dir):
    idx, out = tmp_path / "idx", tmp_path / "out"
    good = run_batch(corpus_dir, idx, out, None, links={"k": 3}, model="hashing", progress=False)
    assert good.status == "ok" and good.policy_source == "built-in defaults"
    before = (out / "related.jsonl").read_bytes()
    bad = tmp_path / "bad.toml"
    bad.write_text("[links]\nmax_age_days = 0\n")
    with pytest.raises(BatchError, match=r"bad\.toml: \[links\] max_age_days must be more than 0"):
        run_batch(corpus_dir, idx, out, bad, model="hashing", progress=False)
    result = CliRunner().invoke(cli, ["batch", str(corpus_dir), "--index", str(idx), "--out", str(out),
                                      "--policy", str(bad), "--model", "hashing", "-q"])
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"Error: {bad}: [links] max_age_days must be more than 0")
    runs = read_runs(out)
    assert [r["status"] for r in runs] == ["ok", "failed", "failed"]
    for run in runs[1:]:
        assert run["error"].startswith(f"{bad}: [links] max_age_days") and "PolicyError" not in run["error"]
        assert run["ended"] >= run["started"]
    assert (out / "related.jsonl").read_bytes() == before  # the outputs are left as they were
    assert len(list(read_jsonl(out))) == 11
    # a policy file is read by the batch itself: the options still replace its [links] settings
    ok = tmp_path / "ok.toml"
    ok.write_text("[links]\nk = 2\n")
    record = json.loads(CliRunner().invoke(cli, ["batch", str(corpus_dir), "--index", str(idx), "--out", str(out),
                                                 "--policy", str(ok), "-k", "1", "--model", "hashing", "-q",
                                                 "--json"]).stdout)
    assert record["policy"]["links"]["k"] == 1 and record["policy_source"] == str(ok)
