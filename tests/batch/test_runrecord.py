"""The batch's run record: typed fields, and the JSON it has always been (fields in the order the run set them)."""

import pytest

from recommender.batch.runrecord import RunRecord

STARTED = dict(started="2026-01-01T00:00:00Z", status="running", corpus="c", index="i", out="o", engine="local")
# `batch --json` of a run that ranked the lists, and of one that kept the last outputs (as before the RunRecord)
COMPUTED = ["started", "status", "corpus", "index", "out", "engine", "seconds", "policy", "policy_source", "skipped",
            "warnings", "skipped_reasons", "ignored", "added", "changed", "unchanged", "removed", "articles",
            "embedded", "reused", "index_rewritten", "model", "model_fingerprint", "backend", "training",
            "lexical_update", "lexical_drift", "links_key", "ranking", "drafts_held_back", "targets_left_out",
            "lists", "lists_state", "stored_lists", "links", "pinned_links", "articles_without_links", "overrides",
            "evaluation", "ended", "by_path"]
REUSED = COMPUTED[:COMPUTED.index("ranking")] + ["links", "pinned_links", "articles_without_links", "overrides",
                                                  "evaluation", "by_path", "drafts_held_back", "targets_left_out",
                                                  "lists_state", "outputs_reused", "ended"]


def test_the_record_has_the_fields_set_in_the_order_they_were_set():
    record = RunRecord(**STARTED)
    assert list(record.to_dict()) == [*STARTED, "seconds"]
    record.articles, record.evaluation = 3, None  # None set is kept (a run without curated lists)
    record.status = "ok"  # set again: stays where it was
    assert record.to_dict() == {**STARTED, "status": "ok", "seconds": {}, "articles": 3, "evaluation": None}
    assert list(record.to_dict())[-2:] == ["articles", "evaluation"]
    with pytest.raises(AttributeError, match="no field 'artcles'"):
        record.artcles = 4  # a misspelt field is an error, not a new key


def test_a_batch_writes_its_record_as_before(tmp_path, corpus_dir):
    from recommender.batch.nightly import run_batch

    first = run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", None, model="hashing", progress=False)
    again = run_batch(corpus_dir, tmp_path / "idx", tmp_path / "out", None, model="hashing", progress=False)
    assert list(first.to_dict()) == COMPUTED and not first.outputs_reused
    assert list(again.to_dict()) == REUSED and again.outputs_reused
