"""Reading in shards (what the Ray engine's workers do) gives the local reader's corpus: the same articles in
the same order, the same problems in the same order, the same content hashes and prepared-article cache."""

import codecs
import json
import sqlite3

from recommender.batch.shardread import read_sharded
from recommender.embed.prepare import Preparation
from recommender.embed.vectorize import content_hashes
from recommender.ingest.prepared_cache import PreparedCache
from recommender.ingest.reader import read_corpus
from recommender.ingest.shards import corpus_shards

from conftest import DEMO


def here(fn, parts, common=None):
    return [fn(common, part) for part in parts]


def write_messy_corpus(folder):
    """A folder with what a shard boundary could get wrong: a JSONL file (UTF-8 byte-order mark, bad JSON, a
    bad date, bytes that are not UTF-8, a NUL byte, duplicate URLs, blank lines), a blank one, one without
    articles, a UTF-16 one, news items whose curated stubs merge (the longer excerpt wins), files skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": f"a{i}", "title": f"Title {i}", "text": f"body {i} words", "url": f"https://x.org/p{i % 7}"})
             for i in range(40)]
    lines[5] = "not json"
    lines[9] = json.dumps({"id": "a9", "title": "t", "text": "x", "published": "2023-13-45"})
    data = "\n".join(lines).encode().replace(b"Title 12", b"Title \xff12").replace(b"Title 20", b"Title \x0020")
    (folder / "feed.jsonl").write_bytes(codecs.BOM_UTF8 + data + b"\n\n")
    (folder / "blank.jsonl").write_bytes(b"\n \n" * 200)
    (folder / "none.jsonl").write_bytes(b"\n".join([b'{"x": 1}'] * 30))
    (folder / "wide.jsonl").write_bytes("\n".join(lines[:10]).encode("utf-16"))
    (folder / "n.md").write_text("---\ntitle: News\ncategory: news\nrelated:\n  - webUrl: https://x.org/p1\n"
                                 "    title: Rel\n    excerpt: short\n  - webUrl: https://y.org/q\n    title: Q\n"
                                 "    excerpt: a much longer excerpt of q\n---\nBody of news\n")
    (folder / "m.md").write_text("---\ntitle: M\nrelated:\n  - webUrl: https://y.org/q\n    title: Q\n"
                                 "    excerpt: q text\n---\nBody m\n")  # read first: its stub is kept
    (folder / "empty.md").write_text("")
    (folder / "README.md").write_text("not an article")
    (folder / "notes.bin").write_text("not read")
    return folder


def assert_same_corpus(local, sharded, hashes):
    assert [a.to_dict() for a in sharded.articles] == [a.to_dict() for a in local.articles]
    assert sharded.problems == local.problems and sharded.ignored == local.ignored
    assert hashes == content_hashes(local.articles, Preparation())


def test_shards_cut_files_at_line_ends_and_group_small_files(tmp_path):
    corpus = write_messy_corpus(tmp_path / "c")
    shards = list(corpus_shards(corpus, [], 120))
    parts = [item for shard in shards for item in shard if item.part is not None]
    assert len(parts) > 5 and all(item.file.data.endswith(b"\n") for item in parts[:-1])
    assert parts[0].part == (1, True) and all(not item.part[1] for item in parts[1:] if item.rel == parts[0].rel)
    assert [len(shard) for shard in corpus_shards(corpus, [], 1 << 22)] == [7]  # small files share a shard


def test_sharded_read_equals_the_local_read(tmp_path):
    corpus = write_messy_corpus(tmp_path / "c")
    local = read_corpus(corpus)
    assert len(local.problems) > 20 and any(p.kept for p in local.problems)
    for size in (60, 1000, 1 << 22):
        assert_same_corpus(local, *read_sharded(corpus, here, shard_bytes=size))
    assert_same_corpus(read_corpus(DEMO), *read_sharded(DEMO, here, shard_bytes=2000))
    one = corpus / "feed.jsonl"  # a single file as the corpus
    assert_same_corpus(read_corpus(one), *read_sharded(one, here, shard_bytes=100))


def test_sharded_read_fills_and_uses_the_prepared_cache_as_the_local_read(tmp_path):
    corpus = write_messy_corpus(tmp_path / "c")
    local_cache, sharded_cache = tmp_path / "local.sqlite", tmp_path / "sharded.sqlite"

    def entries(path):
        with sqlite3.connect(path) as db:
            return sorted(db.execute("SELECT key, articles FROM prepared"))

    for _ in range(2):  # cold, then warm
        with PreparedCache(local_cache) as cache:
            local = read_corpus(corpus, cache=cache)
        assert_same_corpus(local, *read_sharded(corpus, here, sharded_cache, shard_bytes=100))
        assert entries(sharded_cache) == entries(local_cache) and len(entries(local_cache)) > 20
    (corpus / "m.md").unlink()  # pruned to what the last read used
    with PreparedCache(local_cache) as cache:
        read_corpus(corpus, cache=cache)
    read_sharded(corpus, here, sharded_cache, shard_bytes=100)
    assert entries(sharded_cache) == entries(local_cache)
