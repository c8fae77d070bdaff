"""The README's examples are real and current: scripts/readme_examples.py runs every documented command (and
the Python API example) on the demo corpus and its output must be what the README shows."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_spec = importlib.util.spec_from_file_location("readme_examples", ROOT / "scripts" / "readme_examples.py")
examples = importlib.util.module_from_spec(_spec)
sys.modules["readme_examples"] = examples
_spec.loader.exec_module(examples)


def documented_commands(text: str) -> list[str]:
    commands = []
    for region in examples.find_regions(text):
        fence = next(examples.FENCE.finditer(region.body))
        if fence["lang"] != "python":
            commands += examples.commands_of(fence["text"])
    return commands


def sh_blocks(text: str) -> list[str]:
    return [m["text"].strip() for m in examples.FENCE.finditer(text) if m["lang"] == "sh"]


@pytest.fixture(scope="module")
def fresh():
    """Every example run once, in order, in one temporary copy of demo/ (the demo index is built once here)."""
    workspace = examples.Workspace()
    try:
        yield examples.regenerate(README.read_text(encoding="utf-8"), workspace), workspace
    finally:
        workspace.close()


@pytest.mark.model
def test_readme_outputs_are_current(fresh):
    text, _ = fresh
    diff = examples.differences(README.read_text(encoding="utf-8"), text)
    assert not diff, ("README.md shows output that the commands no longer print; run "
                      "`python scripts/readme_examples.py` and review the change:\n" + "\n".join(diff[:80]))


@pytest.mark.model
def test_python_api_example_runs_as_written_and_leaves_no_pin(fresh):
    text, workspace = fresh
    assert "```python" in text
    assert workspace.overrides_after_python == [[]]  # it ran (exit 0, no traceback) and unpinned what it pinned
    assert not (workspace.folder / "recommender.toml").exists()  # it needs no policy file


def test_tour_shows_every_command():
    from recommender.cli import cli

    shown = {m.group(1) for c in documented_commands(README.read_text(encoding="utf-8"))
             for m in re.finditer(r"(?:^|[;&|]\s*)recommender\s+(?:-\S+\s+)*([a-z]+)", c)}
    assert set(cli.commands) - shown == set(), "commands with no example in the README's tour"


def test_readme_stays_a_newcomers_page():
    """Issue 16: about a quarter of the 41 KB it once was; reference text, figures and design notes go to docs/."""
    size = len(README.read_bytes())
    assert size <= 11_500, f"README.md is {size} bytes; move reference detail to docs/ (docs/commands.md)"


def test_the_python_example_writes_beside_the_first_commands_output():
    text = README.read_text(encoding="utf-8")
    python = next(m["text"] for m in examples.FENCE.finditer(text) if m["lang"] == "python")
    outs = re.findall(r'run_batch\("[^"]+", "[^"]+", "([^"]+)"', python)
    first_out = re.search(r"--out (\S+)", documented_commands(text)[0]).group(1)
    assert outs and first_out not in outs, "the Python example overwrites the first command's output"


def test_first_example_is_the_setup_command_and_ci_runs_the_test_command():
    text = README.read_text(encoding="utf-8")
    setup, tests = sh_blocks(text)[:2]
    first_run = documented_commands(text)[0]
    assert setup.endswith(" && " + first_run) and first_run == "recommender batch demo --index demo-index --out demo-out"
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == tests


def test_check_ignores_timings_and_dates_but_not_results():
    shown = ('$ recommender batch demo\nembedding: 100%|██████████| 42/42 [00:14<00:00,  2.98article/s]\n'
             'lexical index (full): 300 terms (2.7 s)\nseconds: engine 0.00, read 0.52 (total 18.13)\n'
             '{"created": "2026-12-02T12:14:17Z", "seconds": {"read": 0.48}}\n'
             'system  recall@10  seconds\n------  ---------  -------\nsystem  0.902      0.2\n')
    rerun = ('$ recommender batch demo\nembedding: 100%|████████| 42/42 [00:03<00:00, 13.19article/s]\n'
             'lexical index (full): 300 terms (1.2 s)\nseconds: engine 0.01, read 0.16 (total 4.60)\n'
             '{"created": "2027-01-05T08:00:00Z", "seconds": {"read": 0.08}}\n'
             'system  recall@10  seconds\n------  ---------  -------\nsystem  0.902      11.5\n')
    assert examples.differences(shown, rerun) == []
    assert examples.differences(shown, rerun.replace("0.902", "0.905")) == []  # another CPU's last digits
    for changed in (rerun.replace("0.902", "0.871"), rerun.replace("system  0.902", "dense   0.902"), rerun.replace("300 terms", "301 terms"),
                    rerun.replace("42/42", "41/41")):
        assert examples.differences(shown, changed)


def test_script_rewrites_a_stale_readme_and_check_fails_until_then(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n\n<!-- example: p -->\n```text\n$ recommender policy | grep -A1 '^\\[batch\\]'\n"
                      "[batch]\nmax_shrink = 0.5\n```\n<!-- /example -->\n\n<!-- example: rc -->\n```text\n"
                      "$ recommender related nothing-here -q\n$ echo $?\n```\n<!-- /example -->\n")
    stale = readme.read_text()
    assert examples.main(["--check", "--readme", str(readme), "-q"]) == 1
    assert readme.read_text() == stale and "max_shrink = 0.2" in capsys.readouterr().out
    assert examples.main(["--readme", str(readme), "-q"]) == 0
    written = readme.read_text()
    assert "[batch]\nmax_shrink = 0.2\n```" in written
    assert "$ recommender related nothing-here -q\nError: " in written and "$ echo $?\n1\n```" in written
    assert examples.main(["--check", "--readme", str(readme), "-q"]) == 0


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(page: Path) -> list[str]:
    """The relative links of a Markdown page whose file, or #anchor in it, does not exist."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)  # not in code
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+\s+(.*)$", linked.read_text(encoding="utf-8"), flags=re.M)
            if anchor not in {_anchor(h) for h in headings}:
                broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def test_readme_and_docs_links_resolve():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    assert [p for p in pages if p.name != "README.md"], "no docs/*.md pages found"
    assert [b for page in pages for b in broken_links(page)] == []
    linked = {target.split("#")[0] for target in _LINK.findall(README.read_text(encoding="utf-8"))}
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= linked, "a docs page the README omits"


def test_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## The package, stage by stage\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](a.md#the-package-stage-by-stage) [web](https://example.com/x.md)\n"
                    "```\n[in code](nowhere.md)\n```\n[gone](b.md) [bad](a.md#no-such-part)\n")
    assert broken_links(page) == ["README.md: b.md (no such file)", "README.md: a.md#no-such-part (no such heading)"]


_NAMED_PATH = re.compile(r"`((?:recommender|scripts|tests|docs|demo|models|\.ci)/[^`\s]*)`")


def missing_paths(page: Path) -> list[str]:
    """The repository paths a page names in `code` (`recommender/serve/app.py`, `tests/x.py::test_y`) that do not
    exist; paths with a placeholder (`<model>`, `*`, `{id}`, `$VAR`) are not checked."""
    missing = []
    for named in _NAMED_PATH.findall(page.read_text(encoding="utf-8")):
        path = re.split(r"::|#|:", named)[0].rstrip(".,;")
        if not any(c in path for c in "<*{}$") and not (ROOT / path).exists():
            missing.append(f"{page.name}: {named}")
    return missing


def test_paths_named_in_the_docs_exist(tmp_path):
    pages = [README, *sorted((ROOT / "docs").glob("*.md")), *(ROOT / d / "README.md" for d in ("demo", "models"))]
    assert [m for page in pages for m in missing_paths(page)] == []
    page = tmp_path / "x.md"
    page.write_text("`recommender/editor/index.html` `tests/test_readme.py::test_x` `models/<model>/openvino`")
    assert missing_paths(page) == ["x.md: recommender/editor/index.html"]
