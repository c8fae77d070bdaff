"""Hostile and broken input (issue 24): every failure is one file's (or one JSONL line's), named with the reason,
and the read goes on; a bad value costs only that value; work per file is bounded."""

import json
import os
import threading

import pytest

from recommender.batch.nightly import run_batch
from recommender.embed.embedder import get_embedder
from recommender.embed.prepare import Preparation, prepare
from recommender.ingest.article import Article
from recommender.ingest.reader import read_corpus
from recommender.ingest.safeyaml import load_front_matter
from recommender.ingest.text import clean_body, strip_markdown

from conftest import LEXICAL_POLICY

GOOD = "---\ntitle: A good post about gardens\nslug: good\n---\nGardens need water and light.\n"
NEWS = """---
category: news
title: "Solar farms beside the motorway"
publishedDateTime: {date}
webUrl: "https://news.example.com/solar"
published: {published}
related:
  - title: "Wind farms offshore"
    publishedDateTime: {related_date}
    webUrl: "https://other.example.com/wind"
---
"""


def news(date="2023-03-19T11:52:00Z", related_date="2023-03-17T13:00:00Z", published="true"):
    return NEWS.format(date=date, related_date=related_date, published=published)


def read(tmp_path, files: dict):
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return read_corpus(tmp_path)


@pytest.mark.parametrize("value", ["2023-13-45", "2023-02-29T10:00:00Z", "0000-00-00", "2023-03-19T11:52:00+99:00",
                                   "0001-01-01T00:00:00+05:00"])
def test_a_date_that_is_not_one_is_dropped_with_a_warning_and_the_article_kept(tmp_path, value):
    corpus = read(tmp_path, {"a.md": news(date=value, related_date=value), "b.md": GOOD})
    ids = corpus.by_id()
    assert ids["news.example.com/solar"].published is None and ids["other.example.com/wind"].published is None
    assert "good" in ids
    warnings = [(p.path, p.kept, p.reason) for p in corpus.problems]
    assert all(path == "a.md" and kept and "publishedDateTime" in reason and "not a date" in reason
               for path, kept, reason in warnings) and len(warnings) == 2
    assert warnings[1][2].startswith("related item 1: ")


def test_a_value_of_an_impossible_type_is_kept_as_text(tmp_path):
    corpus = read(tmp_path, {"a.md": news().replace("category: news", 'category: news\nquality: !!int "abc"')})
    assert corpus.by_id()["news.example.com/solar"].published == "2023-03-19T11:52:00Z"
    [problem] = corpus.problems
    assert problem.kept and problem.reason.startswith("front matter line 3: 'abc' is not a valid int")


@pytest.mark.parametrize("where", ["front matter", "related item", "jsonl"])
def test_nesting_past_a_thousand_levels_skips_that_input_only(tmp_path, where):
    deep = "[" * 5000 + "]" * 5000
    files = {"good.md": GOOD}
    if where == "front matter":
        files["a.md"] = news().replace("category: news", f"category: news\ndeep: {deep}")
    elif where == "related item":
        files["a.md"] = news().replace("    webUrl:", f"    deep: {deep}\n    webUrl:")
    else:
        files["a.jsonl"] = '{"id": "x", "title": "X", "text": "x"}\n{"id": "y", "text": %s}\n' % deep
    corpus = read(tmp_path, files)
    assert "good" in corpus.by_id()
    [problem] = corpus.problems
    if where == "jsonl":
        assert "x" in corpus.by_id() and str(problem) == "a.jsonl:2: JSON nested too deeply to read"
    else:
        assert problem.path == "a.md" and "nested deeper than 64 levels" in problem.reason


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcde", "bcdef"))  # 10**6 values
    corpus = read(tmp_path, {"bomb.md": f"---\n{bomb}title: *f\n---\nbody\n", "good.md": GOOD})
    assert [a.id for a in corpus.articles] == ["good"]
    assert "aliases expand to more than 100,000 values" in corpus.problems[0].reason


def test_a_truncated_front_matter_is_refused_so_its_draft_is_never_read_as_text(tmp_path):
    truncated = news(published="false")[:-5]  # no closing --- line
    corpus = read(tmp_path, {"cut.md": truncated, "good.md": GOOD, "rule.md": "---\nJust a rule, then prose.\n"})
    assert sorted(corpus.by_id()) == ["good", "rule"]
    assert str(corpus.problems[0]).startswith("cut.md: front matter is never closed")


def test_cr_only_line_ends_read_like_lf(tmp_path):
    corpus = read(tmp_path, {"mac.md": news(published="false").replace("\n", "\r") + "Body text.\r"})
    article = corpus.by_id()["news.example.com/solar"]
    assert article.draft and article.title == "Solar farms beside the motorway" and article.body == "Body text."


def test_jsonl_is_judged_per_line_and_utf16_is_decoded(tmp_path):
    lines = ['{"id": "a", "title": "A", "text": "aaa"}', '{"id": "b", "title": "B\x00", "text": "b"}',
             '{"id": "c", "title": "C", "text": "ccc \u2028 still c"}', '{"id": "d", "title": "\xe9", "text": "d"}']
    data = "\n".join(lines).encode("utf-8").replace("\xe9".encode("utf-8"), b"\xe9")
    corpus = read(tmp_path, {"feed.jsonl": data, "wide.md": GOOD.encode("utf-16"),
                             "wide.jsonl": (lines[0].replace('"a"', '"w"') + "\n").encode("utf-16"),
                             "nobom.txt": "Some text\n\nIn UTF-16.".encode("utf-16-le")})
    assert sorted(corpus.by_id()) == ["a", "c", "good", "w"]
    assert "still c" in corpus.by_id()["c"].body  # U+2028 inside a JSON string does not end the line
    assert sorted(map(str, corpus.problems)) == [
        "feed.jsonl:2: NUL bytes in the line (binary data); line skipped",
        "feed.jsonl:4: not valid UTF-8 (byte 0xe9 at column 23)",
        "nobom.txt: UTF-16 (or UTF-32) text without a byte-order mark; save it as UTF-8"]


def test_a_jsonl_related_item_that_is_not_an_id_is_named_and_left_out(tmp_path):
    lines = ['{"id": "a", "title": "A", "text": "aaa"}', '{"id": "b", "title": "B", "text": "bbb"}',
             '{"id": "c", "title": "C", "text": "ccc", "related": ["a", null, {"id": "b"}, 7, true, [1], "b"]}',
             '{"id": "d", "title": "D", "text": "ddd", "related": "a"}',
             '{"id": "e", "title": "E", "text": "eee", "related": {"id": "a"}}']
    corpus = read(tmp_path, {"feed.jsonl": "\n".join(lines) + "\n"})
    ids = corpus.by_id()
    assert ids["c"].curated == ["a", "7", "b"] and ids["d"].curated == ["a"] and ids["e"].curated == []
    assert [(str(p), p.kept) for p in corpus.problems] == [
        ("feed.jsonl:3: related item 2: None is not an id or URL; ignored", True),
        ("feed.jsonl:3: related item 3: {'id': 'b'} is not an id or URL; ignored", True),
        ("feed.jsonl:3: related item 5: True is not an id or URL; ignored", True),
        ("feed.jsonl:3: related item 6: [1] is not an id or URL; ignored", True),
        ("feed.jsonl:5: related item 1: {'id': 'a'} is not an id or URL; ignored", True)]


def test_a_huge_title_source_url_or_id_is_not_copied_into_every_list(tmp_path):
    # a body exported as the title (or the URL, or the id) would be copied into each list linking to the article
    huge = " ".join(["compost"] * 40_000)
    lines = [{"id": "t", "title": huge, "text": "soil", "source": huge}, {"id": "u", "title": "U", "text": "soil",
             "url": "https://ex.com/" + "a" * 40_000}, {"id": "i" * 40_000, "title": "I", "text": "soil"}]
    corpus = read(tmp_path, {"feed.jsonl": "\n".join(json.dumps(line) for line in lines) + "\n"})
    ids = corpus.by_id()
    assert sorted(ids) == ["t", "u"]
    assert len(ids["t"].title) <= 1000 and ids["t"].title.endswith("compost…") and len(ids["t"].source) <= 1000
    assert ids["u"].url is None  # not a usable URL, like one that is not http(s)
    assert [str(p) for p in corpus.problems] == ["feed.jsonl:3: id longer than 2,048 characters"]


def test_a_file_name_that_is_not_utf8_or_holds_a_line_end_stops_nothing(tmp_path):
    # a Latin-1 name (b"caf\xe9.md") once failed the whole night (UnicodeEncodeError writing the prepared-article
    # cache); a line end in a name made a problem two lines, the second one a forged "skipped" line
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text(GOOD)
    for name, text in ((b"caf\xe9.md", "---\ntitle: Cafe garden\n---\nGardens need water.\n"),
                       (b"x\nskipped y.md: z.md", "---\nt: [\n---\n")):
        with open(os.path.join(os.fsencode(corpus), name), "w") as fh:
            fh.write(text)
    policy = tmp_path / "recommender.toml"
    policy.write_text(LEXICAL_POLICY)
    record = run_batch(corpus, tmp_path / "idx", tmp_path / "out", policy, embedder=get_embedder("hashing"),
                       progress=False)
    assert record.status == "ok" and record.skipped == 1
    [reason] = record.skipped_reasons
    assert reason.startswith("x\\nskipped y.md: z.md: front matter is not valid YAML") and "\n" not in reason
    lines = [json.loads(line) for line in (tmp_path / "out" / "related.jsonl").read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == ["caf\\xe9", "good"]


def test_a_lone_surrogate_escape_in_json_or_yaml_stops_nothing(tmp_path):
    # "\ud800" is valid JSON and YAML but no character: once kept in an id or URL, it failed the night when the
    # first output (the prepared-article cache, SQLite, JSON) was written; it is read as U+FFFD, like a bad byte
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text(GOOD)
    (corpus / "feed.jsonl").write_text('{"id": "s\\ud800", "title": "T", "text": "soil", "url": "https://ex.com/'
                                       'a\\udfff", "slug": "x\\ud800"}\n')
    (corpus / "y.md").write_text('---\ntitle: Y\nwebUrl: "https://ex.com/y\\ud800"\nrelated:\n  - title: R\n'
                                 '    webUrl: "https://ex.com/r\\U0000dfff"\n---\nGardens need water.\n')
    policy = tmp_path / "recommender.toml"
    policy.write_text(LEXICAL_POLICY)
    record = run_batch(corpus, tmp_path / "idx", tmp_path / "out", policy, embedder=get_embedder("hashing"),
                       progress=False)
    assert record.status == "ok" and record.skipped == 0
    lines = [json.loads(line) for line in (tmp_path / "out" / "related.jsonl").read_text().splitlines()]
    assert {line["id"]: line["url"] for line in lines} == {
        "good": None, "s\ufffd": "https://ex.com/a\ufffd", "ex.com/y\ufffd": "https://ex.com/y\ufffd",
        "ex.com/r\ufffd": "https://ex.com/r\ufffd"}


def test_an_id_or_url_holding_a_control_character_is_not_used(tmp_path):
    # `list` printed "line\nbreak" as two rows and an escape sequence as it came; a URL with a NUL reached the site data
    lines = [{"id": "line\nbreak", "title": "A", "text": "aaa"}, {"id": "esc\u001b[31m", "title": "B", "text": "b"},
             {"id": "n", "title": "N", "text": "nnn", "url": "https://ex.com/a\u0000b"}, {"id": "ok ", "title": "O",
             "text": "ooo", "url": "https://ex.com/o\nk"}]
    corpus = read(tmp_path, {"feed.jsonl": "\n".join(json.dumps(line) for line in lines) + "\n"})
    assert {a.id: a.url for a in corpus.articles} == {"n": None, "ok": None}
    assert [str(p) for p in corpus.problems] == ["feed.jsonl:1: id 'line\\nbreak' holds a control character",
                                                 "feed.jsonl:2: id 'esc\\x1b[31m' holds a control character"]


@pytest.mark.parametrize("shards", [False, True])
def test_a_fifo_named_like_an_article_is_refused_not_waited_on(tmp_path, shards):
    # reading a FIFO blocks until something writes to it: the night waited forever (a device such as /dev/zero,
    # behind a symbolic link, would be read until memory ran out)
    (tmp_path / "good.md").write_text(GOOD)
    for name in ("pipe.md", "pipe.rss", "pipe.xml"):
        os.mkfifo(tmp_path / name)
    done = {}

    def run():
        if shards:
            from recommender.ingest.shards import assemble, corpus_shards, read_shard
            ignored = []
            done["corpus"] = assemble([read_shard(None, s) for s in corpus_shards(tmp_path, ignored)], ignored)
        else:
            done["corpus"] = read_corpus(tmp_path)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert "corpus" in done, "the read is blocked on the FIFO"
    assert list(done["corpus"].by_id()) == ["good"]
    assert [str(p) for p in done["corpus"].problems] == [
        f"pipe.{kind}: cannot read: not a regular file (a FIFO, a device or a socket)" for kind in ("md", "rss", "xml")]


@pytest.mark.parametrize("shards", [False, True])
def test_a_symbolic_link_out_of_the_corpus_folder_is_not_read(tmp_path, shards):
    # a link committed into a content folder would publish whatever the batch can read (/etc/passwd, a key) as an
    # article; a link to a file inside the folder is read as usual
    corpus, outside = tmp_path / "content", tmp_path / "private"
    (corpus / "notes").mkdir(parents=True)
    outside.mkdir()
    (corpus / "good.md").write_text(GOOD)
    (corpus / "notes" / "real.md").write_text(GOOD.replace("good", "real"))
    (outside / "secret.md").write_text("---\ntitle: Secret\nslug: secret\n---\nTOP SECRET KEY MATERIAL\n")
    (corpus / "secret.md").symlink_to(outside / "secret.md")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "alias.md").symlink_to(corpus / "notes" / "real.md")
    if shards:
        from recommender.ingest.shards import assemble, corpus_shards, read_shard
        ignored = []
        read = assemble([read_shard(None, s) for s in corpus_shards(corpus, ignored)], ignored)
    else:
        read = read_corpus(corpus)
    texts = " ".join(a.body for a in read.articles)
    assert "TOP SECRET" not in texts and "root:" not in texts
    assert sorted(read.by_id()) == ["good", "real"]  # alias.md is read (real.md then reported as a duplicate id)
    assert [str(p) for p in read.problems if "outside" in str(p)] == [
        "passwd.txt: cannot read: a symbolic link to a file outside the corpus folder (/etc/passwd); not read",
        f"secret.md: cannot read: a symbolic link to a file outside the corpus folder ({outside / 'secret.md'}); "
        "not read"]


def test_windows_per_article_are_capped_without_changing_the_preparation_key():
    words = [f"w{i}" for i in range(150 + 120 * 999)]  # 1,000 windows
    prepared = prepare(Article(id="a", title="T", body=" ".join(words)))
    assert len(prepared.windows) == 256 and len(prepared.picked) == 8
    assert prepared.windows[0] == "T: " + " ".join(words[:150])
    assert prepared.windows[-1] == "T: " + " ".join(words[-150:])
    assert Preparation().key == Preparation(max_windows=10).key and Preparation().to_dict()["max_windows"] == 256
    short = prepare(Article(id="b", title="T", body=" ".join(words[:20000])))
    assert len(short.windows) == 167  # below the cap: every window, as before


@pytest.mark.parametrize("body, expected", [
    ("*a " * 17000, "*a " * 17000), ("[" * 50000, "[" * 50000), ("<svg/> x " * 3000, "  x " * 3000),
    ("<script>x\n" * 3000, "x\n" * 3000), ("**bold *and* more** `code`", "bold and more code"),
    ("# C#\n## Title ##\n<script>alert(1)</script>kept", "C#\nTitle\n kept"),
], ids=["emphasis", "brackets", "svg", "unclosed-script", "nested-emphasis", "headings"])
def test_markdown_patterns_on_hostile_bodies(body, expected):
    assert strip_markdown(body).split() == expected.split()


def test_a_read_past_its_time_budget_is_reported_and_the_read_goes_on(monkeypatch):
    from recommender.ingest import budget
    from recommender.ingest.guard import per_input

    clock = [100.0]
    monkeypatch.setattr(budget, "monotonic", lambda: clock[0])
    problems = []
    with per_input("slow.md", problems, seconds=0.2):
        clean_body("a *first* pass")  # within the budget
        clock[0] += 1.0  # the read has taken a second
        clean_body("**the** next passes stop at once")
        raise AssertionError("not reached: clean_body checks the budget between its passes")
    with per_input("next.md", problems, seconds=0.2):  # the budget is per input: a new one starts here
        load_front_matter("title: fine\n")
        clean_body("read in time")
    with per_input("bad.md", problems):
        raise RecursionError
    with pytest.raises(TypeError):  # a bug is not bad input: it is raised
        with per_input("bug.md", problems):
            raise TypeError("bug")
    assert [str(p) for p in problems] == [
        "slow.md: reading took longer than the 0.2 s budget of one input; skipped",
        "bad.md: nested too deeply to read"]
    clean_body("*outside* any input's budget, nothing is checked")
