import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from recommender import Index, IndexProblem, UnknownArticle, build_index, read_corpus
from recommender.store.ann import FlatIndex
from recommender.embed.embedder import HashingEmbedder
from recommender.store.manifest import MANIFEST_NAME
from recommender.rank.policy import TARGETS, Duplicates, Links, Policy, Ranking
from recommender.embed.prepare import Preparation
from recommender.rank.topk import topk_bruteforce


def test_faiss_flat_matches_numpy_bruteforce():
    rng = np.random.default_rng(7)
    corpus = rng.normal(size=(500, 32)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = corpus[:40]
    index = FlatIndex.build(corpus)
    scores, rows = index.search(queries, 10)
    ref_scores, ref_rows = topk_bruteforce(queries, corpus, 10)
    assert np.array_equal(rows, ref_rows)
    assert np.allclose(scores, ref_scores, atol=1e-5)


def test_bruteforce_excludes_self_and_breaks_ties_by_row():
    corpus = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float32)
    scores, rows = topk_bruteforce(corpus[:1], corpus, 3, exclude=np.array([0]))
    assert rows.tolist() == [[1, 3, 2]]
    assert scores[0, :2].tolist() == [1.0, 1.0]


EVERY_CANDIDATE = Policy(links=Links(min_score=None, min_reverse=None, targets=TARGETS))  # no minimum, every kind: whole rankings


def test_related_never_returns_the_article_itself(hashing_index):
    with Index.open(hashing_index) as index:
        for info in index.data.store.all():
            hits = index.related(info.id, k=50, policy=EVERY_CANDIDATE)
            assert info.id not in [h.id for h in hits]
            assert len(hits) == len(index) - 1
            assert [h.score for h in hits] == sorted([h.score for h in hits], reverse=True)


def test_related_scores_equal_bruteforce_over_stored_vectors(hashing_index, corpus_dir):
    corpus = read_corpus(corpus_dir)
    with Index.open(hashing_index) as index:
        vectors = index.data.vectors.vectors()
        ids = index.data.store.ids()
        assert ids == [a.id for a in corpus.articles]
        row = ids.index("text/marathon")
        scores, rows = topk_bruteforce(vectors[row:row + 1], vectors, 5, exclude=np.array([row]))
        dense_only = Policy(ranking=Ranking(dense=1, lexical=0, mention=0), duplicates=Duplicates(threshold=1.0),
                            links=Links(min_score=None, min_reverse=None, targets=TARGETS))
        hits = index.related("text/marathon", k=5, policy=dense_only)
        assert [h.id for h in hits] == [ids[r] for r in rows[0]]
        assert np.allclose([h.parts["dense"]["value"] for h in hits], scores[0], atol=1e-4)
        nearest = index.nearest(vectors[row], 5, exclude_rows={row})
        assert np.allclose([h.score for h in nearest], scores[0], atol=1e-5)


def test_lookup_by_url_variant_and_unknown_id_suggestions(hashing_index):
    with Index.open(hashing_index) as index:
        url = "http://www.energy-desk.example.com/2024/05/02/grid-batteries-desert-town/?utm_source=a"
        by_url = index.data.get(url)
        assert by_url.id == "energy-desk.example.com/2024/05/02/grid-batteries-desert-town"
        with pytest.raises(UnknownArticle) as err:
            index.data.get("text/maraton")
        assert "text/marathon" in err.value.suggestions
        assert "closest ids: text/marathon" in str(err.value)


def test_curated_lists_are_stored(hashing_index):
    with Index.open(hashing_index) as index:
        curated = index.data.store.curated()
        assert curated["energy-desk.example.com/2024/06/11/wind-record-engineers"] == [
            "blue-sea-power.example.net/records/offshore-week",
            "energy-desk.example.com/2024/05/02/grid-batteries-desert-town",
        ]


def test_search_and_unindexed_article_use_the_index_model(hashing_index):
    from recommender.ingest.article import Article

    with Index.open(hashing_index) as index:
        hits = index.search("rover crater delta microbial life", k=3)
        assert hits[0].id == "feed/rover-landing"
        new = Article(id="new", title="Astronauts dock at the station", body="The crew opened the hatch in orbit.")
        assert index.related_to_article(new, k=1)[0].id == "feed/orbit-station"


def test_corrupted_vectors_file_is_refused(index_copy):
    manifest = json.loads((index_copy / MANIFEST_NAME).read_text())
    path = index_copy / manifest["files"]["vectors"]["name"]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexProblem, match="does not match its checksum"):
        Index.open(index_copy)


def test_same_size_damage_with_restored_mtime_needs_full_verification(index_copy):
    import os

    manifest = json.loads((index_copy / MANIFEST_NAME).read_text())
    path = index_copy / manifest["files"]["vectors"]["name"]
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # damage that hides from the stat check
    Index.open(index_copy).close()  # the quick check trusts an unchanged stat
    with pytest.raises(IndexProblem, match="does not match its checksum"):
        Index.open(index_copy, verify="full")


def test_missing_file_and_broken_manifest_are_refused(index_copy, tmp_path):
    manifest = json.loads((index_copy / MANIFEST_NAME).read_text())
    (index_copy / manifest["files"]["metadata"]["name"]).unlink()
    with pytest.raises(IndexProblem, match="metadata file is missing"):
        Index.open(index_copy)
    (index_copy / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(IndexProblem, match="manifest is corrupted"):
        Index.open(index_copy)
    with pytest.raises(IndexProblem, match="no index here"):
        Index.open(tmp_path / "nowhere")


def test_other_preparation_is_refused(hashing_index):
    with pytest.raises(IndexProblem, match="text preparation"):
        Index.open(hashing_index, preparation=Preparation(head_weight=0.2))


def test_other_model_is_refused(hashing_index):
    with Index.open(hashing_index) as index:
        with pytest.raises(IndexProblem, match="built with model hashing:256"):
            index.data.embedder("hashing:32")


def test_unchanged_rebuild_keeps_the_index_as_it_is(index_copy, corpus_dir):
    before = {p.name: p.stat().st_mtime_ns for p in index_copy.iterdir()}
    report = build_index(corpus_dir, index_copy, model="hashing", progress=False)
    assert report.vectors.embedded == 0 and report.vectors.reused == report.count
    assert not report.rewritten
    assert report.changes.to_dict() == {"added": 0, "changed": 0, "unchanged": report.count, "removed": 0}
    assert {p.name: p.stat().st_mtime_ns for p in index_copy.iterdir() if p.name not in (".lock", "cache")} == {
        n: t for n, t in before.items() if n not in (".lock", "cache")}


def test_rebuild_reuses_cached_vectors_and_replaces_files_atomically(index_copy, corpus_dir, tmp_path):
    shutil.copytree(corpus_dir, tmp_path / "c")
    (tmp_path / "c" / "text" / "extra.txt").write_text("Allotment notes\n\nBroad beans went in early this year.\n")
    before = {p.name for p in index_copy.iterdir()}
    report = build_index(tmp_path / "c", index_copy, model="hashing", progress=False)
    assert report.vectors.embedded == 1 and report.vectors.reused == report.count - 1
    assert report.changes.added == 1 and report.rewritten
    after = {p.name for p in index_copy.iterdir()}
    data_files = {n for n in after if n.startswith(("vectors-", "articles-"))}
    assert len(data_files) == 2 and not data_files & before  # new version, old files removed
    with Index.open(index_copy) as index:
        assert len(index) == report.count


def test_changed_article_is_re_embedded(tmp_path, corpus_dir):
    shutil.copytree(corpus_dir, tmp_path / "c")
    build_index(tmp_path / "c", tmp_path / "idx", model="hashing", progress=False)
    (tmp_path / "c" / "text" / "marathon.txt").write_text("Training for a first marathon\nRun slowly and often.\n")
    (tmp_path / "c" / "blog" / "sourdough.md").unlink()
    report = build_index(tmp_path / "c", tmp_path / "idx", model="hashing", progress=False)
    assert report.vectors.embedded == 1
    assert report.changes.changed == 1 and report.changes.removed >= 1


def test_metadata_is_opened_read_only(hashing_index):
    with Index.open(hashing_index) as index:
        with pytest.raises(sqlite3.OperationalError):
            index.data.store.db.execute("DELETE FROM articles")


def test_build_with_no_usable_articles_fails(tmp_path, bad_dir):
    with pytest.raises(ValueError, match="no usable articles"):
        build_index(bad_dir, tmp_path / "idx", embedder=HashingEmbedder(), progress=False)


def test_import_loads_neither_torch_nor_faiss():
    import subprocess
    import sys

    code = "import sys, recommender, recommender.cli; print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def clustered(n, dim=32, centres=40, seed=3):
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(centres, dim))
    points = centre[rng.integers(0, centres, n)] + 0.4 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_index_is_close_to_exact_and_round_trips(tmp_path):
    from recommender.store.ann import IVFIndex, load_index

    vectors = clustered(4000)
    ivf = IVFIndex.build(vectors)
    assert ivf.index.nlist == min(4000 // 39, int(4 * np.sqrt(4000))) and ivf.nprobe >= 16
    _, approx = ivf.search(vectors[:200], 10)
    _, exact = topk_bruteforce(vectors[:200], vectors, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.95
    assert np.allclose(ivf.vector(7), vectors[7], atol=0.02)  # 8-bit codes decode close to the original
    ivf.save(tmp_path / "v.faiss")
    again = load_index("faiss-ivf-sq8", tmp_path / "v.faiss")
    assert again.count == 4000 and again.nprobe == ivf.nprobe
    assert np.array_equal(again.search(vectors[:5], 3)[1], ivf.search(vectors[:5], 3)[1])


def test_index_kind_follows_corpus_size():
    from recommender.store.ann import build_for_size

    vectors = clustered(600)
    assert build_for_size(vectors, flat_max=1000).backend == "faiss-flat-ip"
    assert build_for_size(vectors, flat_max=500).backend == "faiss-ivf-sq8"


def test_corpus_digest_is_the_digest_of_each_articles_full_record():
    """The digest reads the fields without asdict's deep copy: the same sha256 as over asdict's JSON (an index
    written before stays recognised as unchanged)."""
    import hashlib
    from dataclasses import asdict

    from recommender.batch.build import corpus_digest
    from recommender.ingest.article import Article

    articles = [Article(id="a", title="Tïtle \"q\"", excerpt="e", body="b\nody", url="https://x/a",
                        published="2020-01-01", source="s", topics=["t1", "t2"], authors=["me"], page_type="guide",
                        draft=True, kind="jsonl", path="f.jsonl", slug="a", curated=["b"]),
                Article(id="b", title="B")]
    expected = hashlib.sha256()
    for article, content in zip(articles, ["h1", "h2"]):
        expected.update(json.dumps([asdict(article), content], sort_keys=True, ensure_ascii=False).encode())
    assert corpus_digest(articles, ["h1", "h2"]) == expected.hexdigest()
    assert corpus_digest(articles, ["h1", "h3"]) != expected.hexdigest()


def test_a_loaded_ivf_index_is_mapped_and_answers_as_the_one_in_memory(tmp_path):
    from recommender.store.ann import IVFIndex, load_index

    vectors = clustered(4000)
    ivf = IVFIndex.build(vectors)
    ivf.save(tmp_path / "v.faiss")
    again = load_index("faiss-ivf-sq8", tmp_path / "v.faiss")
    maps = Path("/proc/self/maps")
    if maps.exists():  # its lists are read from the file as a search visits them, not copied at open
        assert str(tmp_path / "v.faiss") in maps.read_text()
    assert np.array_equal(again.search(vectors[:50], 20)[0], ivf.search(vectors[:50], 20)[0])
    assert np.array_equal(again.search(vectors[:50], 20)[1], ivf.search(vectors[:50], 20)[1])
    assert np.array_equal(again.vector(7), ivf.vector(7)) and np.array_equal(again.vectors(), ivf.vectors())


def test_a_loaded_ivf_index_starts_no_prefetch_threads_at_each_search(tmp_path):
    # FAISS's mapped lists start 32 read-ahead threads at every search by default: at 300,000 articles two thirds of
    # a query by id's dense pool (system time and page faults), for pages the search reads anyway
    import faiss

    from recommender.store.ann import IVFIndex, load_index
    from recommender.store.windowann import WindowANN

    vectors = clustered(4000)
    ivf = IVFIndex.build(vectors)
    ivf.save(tmp_path / "v.faiss")
    again = load_index("faiss-ivf-sq8", tmp_path / "v.faiss")
    assert faiss.downcast_InvertedLists(again.index.invlists).prefetch_nthread == 0
    for got, want in zip(again.search(vectors[:50], 20), ivf.search(vectors[:50], 20)):
        assert np.array_equal(got, want)
    windows = WindowANN.build(vectors, flat_max=1000)
    windows.save(tmp_path / "w.faiss")
    assert faiss.downcast_InvertedLists(WindowANN.load(tmp_path / "w.faiss").index.invlists).prefetch_nthread == 0
