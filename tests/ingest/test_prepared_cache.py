"""The prepared-article cache: unchanged raw input is not cleaned again, and the corpus read is the same."""

import json

from recommender.ingest import reader as ingest
from recommender.ingest.reader import read_corpus
from recommender.ingest.prepared_cache import PreparedCache

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _dicts(corpus):
    return [a.to_dict() for a in corpus.articles]


def test_cached_read_equals_fresh_read_and_skips_cleaning(tmp_path, monkeypatch):
    fresh = read_corpus(FIXTURES / "corpus")
    with PreparedCache(tmp_path / "prepared.sqlite") as cache:
        first = read_corpus(FIXTURES / "corpus", cache=cache)
        assert cache.hits == 0 and cache.misses > 0
    calls = []
    original = ingest.clean_body
    monkeypatch.setattr(ingest, "clean_body", lambda text: calls.append(1) or original(text))
    with PreparedCache(tmp_path / "prepared.sqlite") as cache:
        second = read_corpus(FIXTURES / "corpus", cache=cache)
        assert cache.hits > 0
        assert cache.misses <= len(fresh.problems)  # only input that had problems is parsed again
    clean_files = sum(1 for p in fresh.problems)
    assert len(calls) <= clean_files  # nothing that was cleaned without problems is cleaned again
    assert _dicts(first) == _dicts(fresh) == _dicts(second)
    assert [str(p) for p in second.problems] == [str(p) for p in fresh.problems]


def test_changed_jsonl_line_is_cleaned_again_and_old_entries_pruned(tmp_path):
    feed = tmp_path / "feed.jsonl"
    lines = [{"id": f"a{i}", "title": f"Title {i}", "text": f"Body caf\u00c3\u00a9 number {i}."} for i in range(5)]
    feed.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    with PreparedCache(tmp_path / "prepared.sqlite") as cache:
        read_corpus(feed, cache=cache)
        assert cache.count() == 5
    lines[2]["text"] = "A new body."
    feed.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    with PreparedCache(tmp_path / "prepared.sqlite") as cache:
        cached = read_corpus(feed, cache=cache)
        assert (cache.hits, cache.misses) == (4, 1)
        assert cache.count() == 5  # the old version of a2 was pruned
    assert _dicts(cached) == _dicts(read_corpus(feed))
    assert cached.by_id()["a0"].body == "Body café number 0."  # mojibake repaired, and kept repaired
