"""A query by id with a learned ranking reads the arrays stored with the model (recommender.rank.learneddata): no JSON
model, SciPy or FAISS in a fresh process, the same links in the same order and the same scores (to float32
rounding of the cosine statistics) as the facts built in the query process, arrays made again for every new index
version, and not used for a model stored without them."""

import json

import numpy as np
import pytest

from recommender import Index
from recommender.evaluate.training import store_model, train
from recommender.store.manifest import LEARNED_MODEL_FILE as MODEL_FILE
from recommender.rank.learneddata import PREFIX, STATS_KEY
from recommender.rank.policy import policy_from_dict
from recommender.rank.signaltable import graph_columns
from recommender.store.manifest import read_manifest, write_manifest

from test_cold_query import SMALL_GOLD, batch, mapped_file, related_in_a_fresh_process, synthetic_feed

ON = policy_from_dict({"ranking": {"learned": "on"}})
TOLERANCE = 1e-5  # learned scores: the cosine statistics of the arrays are summed over all rows at once


def every_third_names_one(lines):
    """Every third article names another by its title: a mention graph."""
    for i, line in enumerate(lines[::3]):
        line["text"] += " as told in " + lines[(3 * i + 7) % len(lines)]["title"]


def trained(tmp_path, count=48, naming=False):
    """A batch's index with a learned model and its arrays; naming: True (every_third_names_one) or a function
    adding names to the articles' records (a list of dicts) in place."""
    corpus = synthetic_feed(tmp_path / "feed.jsonl", count)
    if naming:
        lines = [json.loads(line) for line in corpus.read_text().splitlines()]
        (every_third_names_one if naming is True else naming)(lines)
        corpus.write_text("".join(json.dumps(line) + "\n" for line in lines))
    batch(corpus, tmp_path)
    with Index.open(tmp_path / "idx") as index:
        ids = index.data.store.ids()
        gold = {ids[i]: [ids[(i + 4) % len(ids)], ids[(i + 8) % len(ids)]] for i in range(len(ids))}
        model, _ = train(index, SMALL_GOLD, folds=3, gold=gold)
    store_model(tmp_path / "idx", model)
    return corpus


def built_in_process(folder, article_id):
    """What the query computes when the arrays are not there (the graph facts built from the lexical index)."""
    with Index.open(folder) as index:
        index.data.manifest.stats.pop(STATS_KEY)
        return [(r.id, r.score, r.parts["learned"]) for r in index.related(article_id, policy=ON)]


def mapped_in_process(folder, article_id):
    with Index.open(folder) as index:
        return [(r.id, r.score, r.parts["learned"]) for r in index.related(article_id, policy=ON)]


def assert_same(mapped, built):
    assert [i for i, _, _ in mapped] == [i for i, _, _ in built]
    for (_, s, parts), (_, t, other) in zip(mapped, built):
        assert abs(s - t) <= TOLERANCE
        assert parts.keys() == other.keys() and all(abs(parts[k] - other[k]) <= 1e-3 for k in parts)


def test_a_learned_query_reads_the_arrays_and_answers_as_before(tmp_path):
    trained(tmp_path)
    folder = tmp_path / "idx"
    manifest = read_manifest(folder)
    roles = [r for r in manifest.files if r.startswith(PREFIX)]
    assert len(roles) == 13 and manifest.stats[STATS_KEY]["model_sha256"] == manifest.files["learned_ranker"].sha256
    for role in roles:  # plain arrays, never pickled objects
        assert np.load(folder / manifest.files[role].name, allow_pickle=False).dtype != object
    with Index.open(folder) as index:
        model = index.learned_model(ON)
        assert model.lists == {} and model.coef == json.loads((folder / MODEL_FILE).read_text())["model"]["coef"]
    for article_id in ("feed/0", "feed/9", "feed/31"):
        assert_same(mapped_in_process(folder, article_id), built_in_process(folder, article_id))
    (folder / "recommender.toml").write_text('[ranking]\nlearned = "on"\n')  # read from the cwd
    printed, modules = related_in_a_fresh_process(folder, "feed/9")
    assert printed["answered_by"] == "computed" and modules == []  # no SciPy, scikit-learn or FAISS
    assert [r["id"] for r in printed["related"]] == [i for i, _, _ in mapped_in_process(folder, "feed/9")]
    assert "learned" in printed["related"][0]["parts"]


def test_every_new_index_version_gets_the_arrays_again(tmp_path):
    corpus = trained(tmp_path)
    folder = tmp_path / "idx"
    before = read_manifest(folder)
    synthetic_feed(corpus, 48, changed={5, 17})
    record = batch(corpus, tmp_path, policy=ON)
    assert record.ranking == "learned" and record.stored_lists == "stored"  # ranked with the new arrays
    after = read_manifest(folder)
    assert after.files["metadata"].name != before.files["metadata"].name  # a new index version
    names = {after.files[r].name for r in after.files if r.startswith(PREFIX)}
    assert len(names) == 13 and not names & {before.files[r].name for r in before.files if r.startswith(PREFIX)}
    assert {p.name for p in folder.glob("learned-*.npy")} == names  # the old version's arrays removed
    for article_id in ("feed/5", "feed/20"):
        assert_same(mapped_in_process(folder, article_id), built_in_process(folder, article_id))
        with Index.open(folder) as index:  # the batch's stored list is what the query computes from the arrays
            stored, path = index.related_answer(article_id, policy=ON)
            computed = index.related(article_id, policy=ON)
        assert path == "stored-list" and [(r.id, r.score) for r in stored] == [(r.id, r.score) for r in computed]


def test_a_model_stored_without_its_arrays_is_read_from_its_json(tmp_path):
    trained(tmp_path)
    folder = tmp_path / "idx"
    doc = json.loads((folder / MODEL_FILE).read_text())
    doc["model"]["coef"] = [-c for c in doc["model"]["coef"]]  # another model, written as older code did
    from recommender.rank.learned import _digest
    from recommender.store.manifest import file_entry

    doc["sha256"] = _digest(doc["model"])
    (folder / MODEL_FILE).write_text(json.dumps(doc))
    manifest = read_manifest(folder)
    manifest.files["learned_ranker"] = file_entry(folder / MODEL_FILE)
    write_manifest(folder, manifest)
    with Index.open(folder) as index:
        model = index.learned_model(ON)
        assert model.lists and model.coef == doc["model"]["coef"]  # the JSON, not the stale arrays
        assert index.data.link_graphs(model).mentions.__class__.__name__ == "csr_matrix"


def test_the_mentions_are_the_lexical_and_query_files_and_an_index_with_its_own_copy_answers_the_same(tmp_path):
    """M and Mᵀ are not written again with the learned arrays: M read from the lexical file, Mᵀ from the query
    data, the same bytes; an index written before (its own learned:mentions_* and mentions_t_* files, named in
    the manifest) reads those and answers the same."""
    from recommender.rank.learneddata import SHARED, TURNED
    from recommender.store.manifest import file_entry
    from recommender.store.mentionmatrix import transpose
    from recommender.store.npyfiles import write_npy_files

    trained(tmp_path, naming=True)
    folder = tmp_path / "idx"
    manifest = read_manifest(folder)
    assert not any(PREFIX + name in manifest.files for name in SHARED + TURNED)
    with Index.open(folder) as index:
        mentions = index.data.lexical.mentions
        turned = transpose(mentions)
        own = {f"{name}_{part}": getattr(matrix, part) for name, matrix in (("mentions", mentions),
               ("mentions_t", turned)) for part in ("data", "indices", "indptr")}
        stored = {name: index.data.learned_files.array(name) for name in SHARED + TURNED}
        graph = index.data.link_graphs(index.learned_model(ON))
        assert mentions.nnz and mapped_file(graph.mentions.data) and mapped_file(graph.mentions_t.data)
    for name in SHARED + TURNED:  # the lexical file's and the query data's bytes: what the learned arrays held
        assert stored[name].dtype == own[name].dtype and np.array_equal(stored[name], own[name])
    answers = {a: mapped_in_process(folder, a) for a in ("feed/0", "feed/9", "feed/31")}
    manifest.files.update(write_npy_files(folder, "learned-old", PREFIX, own))  # as the code before wrote them
    (folder / manifest.files["lexical"].name).rename(folder / "lexical-moved.npz")  # not read for M now
    manifest.files["lexical"] = file_entry(folder / "lexical-moved.npz")
    write_manifest(folder, manifest)
    with Index.open(folder) as index:
        assert index.data.learned_files.names["mentions_t_data"] == "learned-old-mentions_t_data.npy"
    for article_id, answer in answers.items():
        assert mapped_in_process(folder, article_id) == answer


@pytest.mark.parametrize("count", [2000])
def test_mapped_graph_columns_equal_built_ones_on_a_larger_corpus(tmp_path, count):
    """Candidates fewer than a quarter of the corpus: the query process computes the cosine statistics of its
    candidates only; the arrays hold every article's, computed at once (float32 rounding apart, the same)."""
    from recommender.rank.graph_signals import LinkGraphs
    from recommender.rank.learneddata import CSRArrays

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((count, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    from recommender.rank.corpusstats import dense_moments
    from scipy import sparse

    mentions = sparse.random(count, count, density=0.002, random_state=2, dtype=np.float32, format="csr")

    class Lexical:
        pass

    lexical = Lexical()
    lexical.count, lexical.mentions = count, mentions
    lists = {int(q): [int(r) for r in rng.choice(count, 5, replace=False)] for q in rng.choice(count, 300)}
    moments = dense_moments(vectors)
    built = LinkGraphs.build(vectors, lexical, lists, moments)
    full = LinkGraphs.build(vectors, lexical, lists, moments)
    full.dense_stats_of(np.arange(count))
    mapped = LinkGraphs(vectors=vectors, mean_vector=moments[0], second_moment=moments[1],
                        named_by=full.named_by, in_links=full.in_links, dense_stats=full.dense_stats.copy(),
                        **{name: CSRArrays(getattr(full, name).data, getattr(full, name).indices,
                                           getattr(full, name).indptr)
                           for name in ("mentions", "mentions_t", "lists", "lists_t", "co")})
    for query in rng.choice(count, 20, replace=False):
        rows = rng.choice(count, 300, replace=False)
        z = {"dense": rng.standard_normal(300).astype(np.float32)}
        cosine = vectors[rows] @ vectors[query]
        a, b = (graph_columns(graph, int(query), rows, z, cosine) for graph in (mapped, built))
        assert np.array_equal(np.delete(a, 3, axis=1), np.delete(b, 3, axis=1))
        assert np.allclose(a[:, 3], b[:, 3], rtol=0, atol=1e-4)
