"""Queries by id in a fresh process: no heavy imports, precomputed arrays that give the same numbers as the lexical
index, stored batch lists that equal what a query computes (and are not used once anything that decides them
changed), and indexes built before the precomputed files still answering."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from recommender import Index
from recommender.batch.nightly import run_batch
from recommender.evaluate.training import store_model
from recommender.store.manifest import read_manifest, write_manifest
from recommender.rank.overrides import Overrides
from recommender.rank.policy import Policy, policy_from_dict
from recommender.rank.mappedarrays import MappedLexical
from recommender.rank.storedlists import HEADER

HEAVY = ("scipy", "sklearn", "torch", "sentence_transformers", "transformers", "faiss")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = """
import json, sys
from recommender.cli import main
sys.argv = ["recommender", "related", "--json", "-q", "--index", sys.argv[1], sys.argv[2]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(%r))))
""" % (HEAVY,)


TOPICS = {
    "space": "rocket orbit launch satellite astronaut moon telescope mission crater lander",
    "food": "bread flour oven yeast dough crust butter recipe kitchen sourdough",
    "sport": "match goal striker league season coach stadium penalty keeper final",
    "energy": "solar wind battery grid turbine power storage panel voltage tariff",
}


def synthetic_feed(path, count, changed=()):
    """A JSONL corpus of `count` small articles over four topics, naming each other now and then."""
    lines = []
    for i in range(count):
        topic = list(TOPICS)[i % 4]
        words = TOPICS[topic].split()
        text = " ".join(words[(i * 7 + j) % len(words)] for j in range(30 + i % 11))
        if i % 5 == 0:
            text += f" see also {list(TOPICS)[(i + 1) % 4]} story {(i + 3) % count}"
        if i in changed:
            text += " revised edition with corrections"
        lines.append(json.dumps({"id": f"feed/{i}", "title": f"{topic} story {i}", "text": text,
                                 "source": f"desk-{i % 3}", "published": f"2024-01-{1 + i % 28:02d}",
                                 "tags": [topic, f"tag{i % 6}"]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def mapped_file(array) -> bool:
    """Whether the array reads a memory-mapped file (a plain view of one counts)."""
    while array is not None and not isinstance(array, np.memmap):
        array = array.base
    return array is not None


def related_in_a_fresh_process(folder, article_id):
    """(the JSON `related --json` printed, the heavy top-level modules the process imported)."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(folder), article_id], capture_output=True, text=True,
                          env=env, cwd=str(folder), timeout=120)
    assert done.returncode == 0, done.stderr
    answer, modules = done.stdout.strip().splitlines()
    return json.loads(answer), json.loads(modules)


SMALL_GOLD = policy_from_dict({"ranking": {"train_min_lists": 3}})  # train on these tests' few dozen lists


def batch(corpus, tmp_path, policy=Policy(), **kwargs):
    return run_batch(corpus, tmp_path / "idx", tmp_path / "out", policy, model="hashing", progress=False, **kwargs)


def answers(folder, policy=None, **kwargs):
    """Every article's (stored-or-computed answer, path) and the computed answer, as dicts without `parts`."""
    out = {}
    with Index.open(folder) as index:
        for article_id in index.data.store.ids():
            first, path = index.related_answer(article_id, policy=policy, **kwargs)
            computed, how = index.related_answer(article_id, policy=policy, stored=False, **kwargs)
            assert how == "computed"
            out[article_id] = ([r.to_dict() for r in first], path,
                               [{k: v for k, v in r.to_dict().items() if k != "parts"} for r in computed])
    return out


def test_query_by_id_imports_no_model_scipy_sklearn_or_faiss(tmp_path, corpus_dir):
    corpus = synthetic_feed(tmp_path / "feed.jsonl", 40)
    run_batch(corpus, tmp_path / "idx", tmp_path / "out", Policy(), model="hashing", progress=False)
    stored, modules = related_in_a_fresh_process(tmp_path / "idx", "feed/3")
    assert stored["answered_by"] == "stored-list" and stored["related"] and modules == []
    (tmp_path / "idx" / HEADER).unlink()  # no stored lists: computed from the mapped arrays
    computed, modules = related_in_a_fresh_process(tmp_path / "idx", "feed/3")
    assert computed["answered_by"] == "computed" and modules == []
    assert [r["id"] for r in computed["related"]] == [r["id"] for r in stored["related"]]
    assert [r["score"] for r in computed["related"]] == [r["score"] for r in stored["related"]]


def test_stored_lists_equal_computed_ones_and_stand_only_while_nothing_changed(tmp_path):
    corpus = synthetic_feed(tmp_path / "feed.jsonl", 60)
    (tmp_path / "idx").mkdir()
    with Overrides.open(tmp_path / "idx") as store:  # a pin and a block are part of what the batch stores
        store.pin("feed/0", "feed/33")
        store.block("feed/1", "feed/5")
    record = batch(corpus, tmp_path)
    assert record.stored_lists == "stored" and record.lists["fresh_statistics"]
    found = answers(tmp_path / "idx")
    assert {path for _, path, _ in found.values()} == {"stored-list"}
    for article_id, (stored, _, computed) in found.items():
        assert stored == computed, article_id  # ids, order, scores, pins and metadata
    assert found["feed/0"][0][0]["id"] == "feed/33" and found["feed/0"][0][0]["pinned"]
    assert "feed/5" not in [r["id"] for r in found["feed/1"][0]]

    # overrides made after the batch apply on top of the stored lists: an article whose blocks are the batch's
    # and whose pins are new (the batch had none) answers from its list with the pins first, as computed
    a, b = [x for x, (stored, _, _) in found.items() if len(stored) >= 3 and x not in ("feed/0", "feed/1", "feed/2", "feed/3")][:2]
    third = found[a][0][2]["id"]
    with Overrides.open(tmp_path / "idx") as store:
        store.pin(a, third)
        store.pin("feed/2", "feed/40")
        store.block(b, found[b][0][0]["id"])
        store.unpin("feed/0", "feed/33")
    now = answers(tmp_path / "idx")
    for article_id, (first, path, computed) in now.items():
        assert [{k: v for k, v in r.items() if k != "parts"} for r in first] == computed, article_id
    assert now[a][1] == "stored-list" and now[a][0][0] == {**found[a][0][2], "pinned": True}
    assert now["feed/3"][1] == "stored-list"  # the other articles' lists still stand
    assert now[b][1] == "computed" and now["feed/0"][1] == "computed"  # a new block, a pin removed
    for article_id in (a, "feed/2", b, "feed/0"):
        assert now[article_id][0] != found[article_id][0]
    with Overrides.open(tmp_path / "idx") as store:
        store.unpin(a, third)
        store.unpin("feed/2", "feed/40")
        store.unpin(b, found[b][0][0]["id"])
        store.pin("feed/0", "feed/33")
    # another policy, fewer links under diversity, --no-overrides or --explain: computed, not read
    with Index.open(tmp_path / "idx") as index:
        assert index.related_answer("feed/3")[1] == "stored-list"  # back to what the batch saw
        assert index.related_answer("feed/3", k=3)[1] == "stored-list"  # the first 3 of 10: what k=3 computes
        assert [r.to_dict() for r in index.related_answer("feed/3", k=3)[0]] == found["feed/3"][0][:3]
        bare = lambda links: [{k: v for k, v in r.to_dict().items() if k != "parts"} for r in links]  # noqa: E731
        for article_id in index.data.store.ids():  # fewer links read from the stored lists: what k=3 computes
            assert bare(index.related_answer(article_id, k=3)[0]) == bare(index.related(article_id, k=3))
        varied = policy_from_dict({"diversity": {"mmr_lambda": 0.7}})
        assert index.related_answer("feed/3", k=3, policy=varied)[1] == "computed"
        assert index.related_answer("feed/0", overrides=False)[1] == "computed"  # the batch pinned there
        aged = policy_from_dict({"links": {"max_age_days": 100000}})
        assert index.related_answer("feed/3", policy=aged)[1] == "computed"
        from recommender.rank import storedlists

        digest = storedlists.code_digest
        try:  # other ranking code (an upgrade) would compute other lists
            storedlists.code_digest = lambda: "another version"
            assert index.related_answer("feed/3")[1] == "computed"
        finally:
            storedlists.code_digest = digest
        assert index.related_answer("feed/3")[1] == "stored-list"

    # a new index version (one article changed): the stored lists no longer stand
    synthetic_feed(corpus, 60, changed={7})
    record = batch(corpus, tmp_path)
    assert record.lists["kind"] == "incremental" and record.stored_lists.startswith("not stored")
    assert not (tmp_path / "idx" / HEADER).exists()
    with Index.open(tmp_path / "idx") as index:
        assert index.related_answer("feed/3")[1] == "computed"

def test_after_a_code_upgrade_the_next_batch_ranks_again_and_stores_lists(tmp_path, monkeypatch):
    """Nothing in the corpus changed, but the code did: the outputs are not reused, every list is ranked again
    (the incremental state was made by other code) and stored, and queries answer from them again."""
    from recommender.common import source
    from recommender.rank import storedlists

    corpus = synthetic_feed(tmp_path / "feed.jsonl", 40)
    assert batch(corpus, tmp_path).stored_lists == "stored"
    again = batch(corpus, tmp_path)
    assert again.outputs_reused is True  # same code, same corpus: the outputs stand
    monkeypatch.setattr(source, "code_digest", lambda: "upgraded")
    monkeypatch.setattr(storedlists, "code_digest", lambda: "upgraded")
    with Index.open(tmp_path / "idx") as index:
        assert index.related_answer("feed/3")[1] == "computed"  # the stored lists are the old code's
    upgraded = batch(corpus, tmp_path)
    assert not upgraded.outputs_reused
    assert upgraded.lists["kind"] == "full" and upgraded.stored_lists == "stored"
    with Index.open(tmp_path / "idx") as index:
        assert index.related_answer("feed/3")[1] == "stored-list"


@pytest.fixture
def logs(caplog, monkeypatch):
    """caplog that also sees the package's log lines after a CLI run set them not to propagate."""
    monkeypatch.setattr(logging.getLogger("recommender"), "propagate", True)
    caplog.set_level("INFO")
    caplog.set_level("INFO", logger="recommender")  # an earlier CLI run with -q may have raised its level
    return caplog


def test_a_tampered_stored_file_is_refused(tmp_path, logs):
    corpus = synthetic_feed(tmp_path / "feed.jsonl", 30)
    batch(corpus, tmp_path)
    header = json.loads((tmp_path / "idx" / HEADER).read_text())
    path = tmp_path / "idx" / header["file"]
    data = bytearray(path.read_bytes())
    data[-9] ^= 0xFF  # a score of the last list
    path.write_bytes(bytes(data))
    with Index.open(tmp_path / "idx") as index:
        assert index.related_answer("feed/29")[1] == "computed"
    assert "stored lists refused" in logs.text


def test_stored_lists_of_a_learned_ranking_equal_computed_ones(tmp_path):
    from recommender.evaluate.training import train

    corpus = synthetic_feed(tmp_path / "feed.jsonl", 40)
    batch(corpus, tmp_path)
    with Index.open(tmp_path / "idx") as index:
        ids = index.data.store.ids()
        gold = {ids[i]: [ids[(i + 4) % len(ids)]] for i in range(len(ids))}  # same topic, next story
        model, _ = train(index, SMALL_GOLD, folds=3, gold=gold)
        store_model(tmp_path / "idx", model)
    on = policy_from_dict({"ranking": {"learned": "on"}})
    record = batch(corpus, tmp_path, policy=on)
    assert record.ranking == "learned" and record.stored_lists == "stored"
    for article_id, (stored, path, computed) in answers(tmp_path / "idx", policy=on).items():
        assert path == "stored-list" and stored == computed, article_id
    # computed with the learned ranking in a fresh process: no model, scikit-learn, SciPy or FAISS (its link-graph
    # facts are read from the arrays stored with the model, recommender.rank.learneddata)
    (tmp_path / "idx" / "recommender.toml").write_text('[ranking]\nlearned = "on"\n')  # read from the cwd
    (tmp_path / "idx" / HEADER).unlink()
    printed, modules = related_in_a_fresh_process(tmp_path / "idx", "feed/9")
    assert printed["answered_by"] == "computed" and modules == []
    assert "learned" in printed["related"][0]["parts"]
    assert [r["id"] for r in printed["related"]] == [r.id for r in found_learned(tmp_path / "idx", on, "feed/9")]


def found_learned(folder, policy, article_id):
    with Index.open(folder) as index:
        return index.related(article_id, policy=policy)


def test_mapped_signal_facts_give_the_same_signals(tmp_path):
    from recommender.rank.mappedarrays import MappedCSR
    from recommender.rank.signals import ArticleFeatures
    from recommender.rank.signaltable import pair_signals

    corpus = synthetic_feed(tmp_path / "feed.jsonl", 48)
    batch(corpus, tmp_path)
    rng = np.random.default_rng(0)
    with Index.open(tmp_path / "idx") as index:
        mapped = index.data.query_data.site_facts()
        assert isinstance(mapped.tags, MappedCSR)
        built = ArticleFeatures.from_infos(index.data.store.all())
        for query in range(48):
            rows = rng.choice(48, 20, replace=False)
            z = {"dense": rng.standard_normal(20).astype(np.float32)}
            assert np.array_equal(pair_signals(query, rows, z, mapped), pair_signals(query, rows, z, built))
        assert mapped.tags[np.array([3, 1])].toarray().tolist() == built.tags[np.array([3, 1])].toarray().tolist()


def test_mapped_lexical_scores_are_the_sparse_products_numbers(tmp_path):
    corpus = synthetic_feed(tmp_path / "feed.jsonl", 50)
    batch(corpus, tmp_path)
    with Index.open(tmp_path / "idx") as index:
        mapped = index.data.query_data.lexical(lambda: index.data.lexical)
        assert isinstance(mapped, MappedLexical)
        for row in range(50):
            rows = np.array([row])
            assert np.array_equal(mapped.tfidf_rows(rows), index.data.lexical.tfidf_rows(rows))
            assert np.array_equal(mapped.mention_rows(rows), index.data.lexical.mention_rows(rows))
        assert np.array_equal(index.data.query_data.array("vectors"), index.data.vectors.vectors())
        topk = index.data.query_data.postings_topk()  # the stored maxima, and the top-k of the stored postings
        assert mapped_file(topk.data) and np.array_equal(topk.term_max, topk.term_maxima())
        tfidf = index.data.lexical.tfidf
        for row in range(50):
            full = index.data.lexical.tfidf_rows(np.array([row]))[0]
            span = slice(tfidf.indptr[row], tfidf.indptr[row + 1])
            rows, scores = topk.top_k(tfidf.indices[span], tfidf.data[span], 5)
            np.testing.assert_allclose(scores, np.sort(full)[::-1][:5], atol=1e-6)
            np.testing.assert_allclose(full[rows], scores, atol=1e-6)


def test_an_index_without_precomputed_files_answers_the_same_and_a_rebuild_adds_them(tmp_path, logs):
    corpus = synthetic_feed(tmp_path / "feed.jsonl", 30)
    batch(corpus, tmp_path)
    folder = tmp_path / "idx"
    (folder / HEADER).unlink()
    with Index.open(folder) as index:
        before = [r.to_dict() for r in index.related("feed/4")]
        assert not index.data.vectors_read  # the mapped vectors answered; FAISS was never read
    manifest = read_manifest(folder)
    for role in [r for r in manifest.files if r.startswith("query:")]:
        (folder / manifest.files.pop(role).name).unlink()
    write_manifest(folder, manifest)
    with Index.open(folder) as index:
        after, path = index.related_answer("feed/4")
        assert path == "computed" and [r.to_dict() for r in after] == before
    assert "built without the precomputed query data" in logs.text
    from recommender import build_index

    report = build_index(corpus, folder, model="hashing", progress=False)
    assert report.rewritten and any(r.startswith("query:") for r in read_manifest(folder).files)


def test_api_aliases_are_linked_and_an_index_without_their_names_reads_them_from_the_metadata(tmp_path):
    """Two API pages of one text under two names (an alias) link each other, where the same text at two URLs of
    one name would be collapsed as the query's copy; the names are kept with the index, and an index built before
    they were kept reads them from its metadata."""
    from recommender import build_index
    from recommender.rank.linking import api_name_codes

    doc = "Return the maximum of an array or maximum along an axis, propagating NaNs."
    rows = [{"id": page, "title": "Maximum", "text": doc}
            for page in ("ref/numpy.max", "ref/numpy.amax", "v1/numpy.max")]
    rows += [{"id": f"ref/numpy.f{i}", "title": f"numpy.f{i}", "text": " ".join(
        list(TOPICS.values())[i % 4].split()[i:i + 12])} for i in range(12)]
    (tmp_path / "api.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    folder = tmp_path / "idx"
    build_index(tmp_path / "api.jsonl", folder, model="hashing", progress=False)
    for drop in (False, True):
        if drop:  # as an index built before the names were kept
            manifest = read_manifest(folder)
            (folder / manifest.files.pop("query:facts_apinames").name).unlink()
            write_manifest(folder, manifest)
        with Index.open(folder) as index:
            names = index.data.rule_columns().api_names
            assert names.tolist() == api_name_codes(index.data.store.all()).tolist()
            assert names[0] == names[2] != names[1]
            related = [r.id for r in index.related("ref/numpy.max")]
            assert "ref/numpy.amax" in related and "v1/numpy.max" not in related


def test_a_query_on_an_approximate_index_decodes_only_the_rows_it_reads(tmp_path, monkeypatch):
    """An IVF article index has no mapped copy of its vectors: a query by id decodes the rows it scores (store.ann
    .DecodedRows), never every vector (n x d: 1.5 GB at 1M articles), and answers as with the whole matrix."""
    from recommender.batch import build
    from recommender.store.ann import DecodedRows, FaissIndex, IVFIndex

    monkeypatch.setattr(build, "build_for_size", IVFIndex.build)
    corpus = synthetic_feed(tmp_path / "feed.jsonl", 240)
    batch(corpus, tmp_path)
    policies = (Policy(), SMALL_GOLD)
    with Index.open(tmp_path / "idx") as index:
        assert index.data.approximate
        whole = index.data.vectors.vectors()
        rows = np.array([3, 0, 239, -1, 3])
        assert np.array_equal(index.data.vectors.decoded()[rows], whole[rows])
        assert np.array_equal(index.data.vectors.decoded()[10:20], whole[10:20])
    decoded = {}
    monkeypatch.setattr(FaissIndex, "vectors", lambda self: pytest.fail("every vector decoded"))
    with Index.open(tmp_path / "idx") as index:
        assert isinstance(index.ranker(Policy()).vectors, DecodedRows)
        for policy in policies:
            decoded[policy] = [[r.to_dict() for r in index.related(f"feed/{i}", policy=policy)] for i in (0, 7, 41)]
    monkeypatch.undo()
    with Index.open(tmp_path / "idx") as index:  # the whole matrix decoded, as before
        monkeypatch.setattr(type(index.data.vectors), "decoded", lambda self: self.vectors())
        for policy in policies:
            whole = [[r.to_dict() for r in index.related(f"feed/{i}", policy=policy)] for i in (0, 7, 41)]
            assert whole == decoded[policy] and all(whole)


def test_the_lexical_sample_by_term_is_stored_and_read_mapped_with_the_same_answers(tmp_path, monkeypatch):
    """The lexical sample's rows by term (a z-score's mean square) are written with the query arrays; a query maps
    them (reading its terms' entries alone) instead of gathering and sorting the sample's rows of the TF-IDF file,
    and answers exactly as when it makes them."""
    from recommender.rank import candidates

    corpus = synthetic_feed(tmp_path / "feed.jsonl", 60)
    batch(corpus, tmp_path)
    manifest = read_manifest(tmp_path / "idx")
    assert {f"query:lexical_sample_{p}" for p in ("starts", "owner", "values")} <= set(manifest.files)

    def related_all(index):
        return [[r.to_dict() for r in index.related(f"feed/{i}")] for i in range(0, 60, 7)]

    with Index.open(tmp_path / "idx") as index:
        stored = related_all(index)
        stage = index.ranker(Policy()).lexical_stage()
        size, starts, owner, values = stage._sample_postings()
        assert all(mapped_file(a) for a in (starts, owner, values))
        made = candidates.lexical_sample(stage.tfidf, stage.n, stage.vocabulary)
        assert size == made[0] and all(np.array_equal(a, b) for a, b in zip((starts, owner, values), made[1:]))
        assert not candidates.stored_sample_fits((starts, owner, values), stage.n, stage.vocabulary + 1)
    monkeypatch.setattr(candidates, "stored_sample_fits", lambda *a: False)  # made in the query process
    with Index.open(tmp_path / "idx") as index:
        assert not mapped_file(index.ranker(Policy()).lexical_stage()._sample_postings()[1])
        assert related_all(index) == stored and any(stored)
