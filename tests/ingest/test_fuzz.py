"""Fuzz: seeded mutations of real-format files (news with front matter and related:, blog posts, text, JSONL from
demo/ and the fixtures) beside good files, through the real batch with the hashing embedder. The mutations are
those of scripts/campaign_input.py (every input class of issue 24, then random edits), smaller: the campaign
runs the same at full size against the seeds."""

import importlib.util
from pathlib import Path

from recommender.batch.nightly import run_batch
from recommender.embed.embedder import get_embedder

from conftest import DEMO, FIXTURES, LEXICAL_POLICY

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "campaign_input.py"
MUTATIONS, GOOD, SEED = 150, 12, 24


def campaign():
    spec = importlib.util.spec_from_file_location("campaign_input", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mutated_files_never_abort_hang_lose_good_files_or_link_drafts(tmp_path):
    fuzz = campaign()
    sources = fuzz.load_sources([DEMO, FIXTURES / "corpus"])
    corpus = tmp_path / "corpus"
    written = fuzz.build_corpus(corpus, sources, MUTATIONS, GOOD, scale=0.02, seed=SEED)
    assert len(written["mutated"]) == MUTATIONS and {m["class"] for m in written["mutated"]} >= {
        "date", "alias-bomb", "emphasis", "truncated-front-matter", "cr-only", "nul-jsonl", "utf-16", "random"}
    policy = tmp_path / "recommender.toml"
    policy.write_text(LEXICAL_POLICY)

    record = run_batch(corpus, tmp_path / "idx", tmp_path / "out", policy, links={"k": 10, "min_score": 0},
                       embedder=get_embedder("hashing"), progress=False)

    assert record.status == "ok"  # never aborts
    reasons = record.skipped_reasons
    assert record.skipped > 0 and record.warnings > 0
    assert not any("budget" in reason for reason in reasons)  # no read needed the time budget's backstop
    found = fuzz.check_run(corpus, tmp_path / "out", fuzz.good_ids(corpus))
    assert found == {"data_lost": [], "unpublished_linked": []}
    # the drafts were there to be linked: the check is not empty
    assert fuzz.draft_ids(corpus)
