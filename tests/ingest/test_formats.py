"""The input formats are one table (ingest.reader.FORMATS): finding corpus files and reading one go through it, so
a new format is one entry and its reader (docs/design.md, "Adding an input format", whose CSV example this runs)."""

import csv
import io
import json
from pathlib import Path

from recommender.ingest import reader
from recommender.ingest.guard import per_input
from recommender.ingest.jsonl import parse_jsonl_record
from recommender.ingest.reader import InputFormat, format_of, read_corpus, read_suffixes


def test_each_suffix_has_one_format_and_others_read_as_text():
    seen = [s for f in reader.FORMATS for s in f.suffixes]
    assert len(seen) == len(set(seen)) and read_suffixes() == set(seen)
    assert format_of(Path("a.JSONL")).name == "jsonl" and format_of(Path("feed.rss")).name == "xml"
    assert format_of(Path("post.md")).name == "text" and format_of(Path("notes.rst")).name == "text"


def read_csv_file(path, rel, cache=None):
    """The docs' example: a CSV file with id, title, text columns, one article a row; a bad row is skipped."""
    found, problems = [], []
    for line, row in enumerate(csv.DictReader(io.StringIO(reader.read_text(path))), start=2):
        with per_input(rel, problems, line=line):
            found.append(parse_jsonl_record(json.dumps(row), rel))
    return found, problems


def test_a_new_format_is_one_entry(tmp_path, monkeypatch):
    (tmp_path / "posts.csv").write_text("id,title,text\na/1,First post,Some words about grids\n"
                                        "a/2,,\na/3,Third post,More words about layout\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# A note\n\nText of the note.\n", encoding="utf-8")
    before = read_corpus(tmp_path)
    assert [a.title for a in before.articles] == ["A note"] and before.ignored == ["posts.csv"]
    monkeypatch.setattr(reader, "FORMATS", (InputFormat("csv", frozenset({".csv"}), read_csv_file),
                                            *reader.FORMATS))
    after = read_corpus(tmp_path)
    assert sorted(a.title for a in after.articles) == ["A note", "First post", "Third post"]
    assert after.ignored == [] and [p.line for p in after.problems] == [3]  # the row without title or text
