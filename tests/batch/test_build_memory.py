"""What the index build no longer holds at 1M articles, with the files it writes unchanged: the caller's articles
(read back from the metadata once it is written: `write_index(release=...)`), the mention matrix M once saved
(mapped from the lexical file), an approximate index's vectors decoded whole (a block at a time), and Mᵀ made by
column slices of M (one pass by rows instead)."""

import dataclasses
import filecmp
import json
import mmap

import numpy as np
import pytest
from scipy import sparse

from recommender.batch import build
from recommender.embed.embedder import get_embedder, preparation_for
from recommender.ingest.article import Article
from recommender.ingest.reader import read_corpus
from recommender.rank import corpusstats, querydata
from recommender.rank.learned import LearnedModel, signed_text
from recommender.rank.signaltable import ALL_SIGNALS
from recommender.store import ann as annmodule
from recommender.store import mentionmatrix
from recommender.store.lexindex import LexicalIndex
from recommender.store.manifest import LEARNED_MODEL_FILE

from conftest import DEMO


def mapped(array) -> bool:
    while getattr(array, "base", None) is not None and not isinstance(array, mmap.mmap):
        array = array.base
    return isinstance(array, mmap.mmap)


@pytest.fixture(scope="module")
def demo():
    articles = read_corpus(DEMO).articles
    for i, a in enumerate(articles[:30]):  # pages naming two articles each: a mention matrix
        articles.append(Article(id=f"notes/{i}", title=f"Notes {i}",
                                body=f"See {a.title} and {articles[-1 - i].title}.", topics=["notes"]))
    vectors = np.random.default_rng(0).normal(size=(len(articles), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return articles, vectors, [f"h{i}" for i in range(len(articles))]


def write(folder, demo, release=None, model=True):
    articles, vectors, hashes = demo
    embedder = get_embedder("hashing")
    folder.mkdir()
    if model:  # a stored learned ranking: the build makes its arrays too (M, Mᵀ, the cosine statistics)
        ids = [a.id for a in articles]
        lists = {ids[i]: [ids[(i + 3) % len(ids)], ids[(i + 5) % len(ids)]] for i in range(0, len(ids), 2)}
        k = len(ALL_SIGNALS)
        learned = LearnedModel(signals=list(ALL_SIGNALS), mean=[0.0] * k, scale=[1.0] * k, coef=[0.1] * k,
                               intercept=0.0, lists=lists)
        (folder / LEARNED_MODEL_FILE).write_text(signed_text(dataclasses.asdict(learned)), encoding="utf-8")
    return build.write_index(folder, list(articles), vectors, hashes, embedder, preparation_for(embedder),
                             release=release)


def same_files(a, b):
    first, second = (json.loads((f / "manifest.json").read_text())["files"] for f in (a, b))
    assert list(first) == list(second)
    return [role for role in first if not filecmp.cmp(a / first[role]["name"], b / second[role]["name"],
                                                      shallow=False)]


def test_the_caller_hands_its_articles_over_and_the_files_are_the_same(demo, tmp_path, monkeypatch):
    """write_index reads the articles back from its metadata once written: the caller's list emptied there (its
    articles freed) gives the same files; M is read mapped from the lexical file by the query data."""
    seen = {}
    plain = querydata.write_query_data

    def spy(folder, token, vectors, lexical, *args, **kwargs):
        seen["nnz"] = lexical.mentions.nnz
        seen["mapped"] = all(mapped(getattr(lexical.mentions, part)) for part in ("data", "indices", "indptr"))
        return plain(folder, token, vectors, lexical, *args, **kwargs)

    monkeypatch.setattr(querydata, "write_query_data", spy)
    write(tmp_path / "held", demo)
    handed = []

    def release():
        handed.append(len(given))
        given.clear()

    given = list(demo[0])
    articles, vectors, hashes = demo
    embedder = get_embedder("hashing")
    (tmp_path / "handed").mkdir()
    (tmp_path / "handed" / LEARNED_MODEL_FILE).write_bytes((tmp_path / "held" / LEARNED_MODEL_FILE).read_bytes())
    build.write_index(tmp_path / "handed", given, vectors, hashes, embedder, preparation_for(embedder),
                      release=release)
    assert handed == [len(articles)] and not given
    assert seen["nnz"] > 20 and seen["mapped"]  # M not held: mapped from the saved lexical file
    assert same_files(tmp_path / "held", tmp_path / "handed") == []
    assert not list((tmp_path / "handed").glob(".mentions_t-*"))  # Mᵀ's files gone with the build


def test_an_approximate_index_is_decoded_a_block_at_a_time(demo, tmp_path, monkeypatch):
    """Above FLAT_MAX the corpus moments and the learned cosine statistics read the IVF index's decoded vectors a
    block at a time (never `vectors()` whole: at 1M articles 1.5 GB), the same numbers as from the whole."""
    monkeypatch.setattr(build, "build_for_size", lambda vectors: annmodule.build_for_size(vectors, flat_max=10))
    write(tmp_path / "whole", demo)  # decoded whole, as before: the reference
    folder = tmp_path / "whole"
    manifest = json.loads((folder / "manifest.json").read_text())
    ivf = annmodule.IVFIndex.load(folder / manifest["files"]["vectors"]["name"])
    decoded = ivf.vectors()
    mean, second = corpusstats.dense_moments(decoded)
    assert np.array_equal(np.load(folder / manifest["files"]["query:dense_mean"]["name"]), mean)
    assert np.array_equal(np.load(folder / manifest["files"]["query:dense_second"]["name"]), second)

    def whole(self):
        raise AssertionError("the approximate index's vectors decoded whole")

    monkeypatch.setattr(annmodule.FaissIndex, "vectors", whole)
    monkeypatch.setattr(corpusstats, "GRAM_BLOCK", 7)  # the build decodes 7 rows at a time
    for block in (1, 7, 100):  # dense_moments_of: the same numbers whatever the block
        assert all(np.array_equal(x, y) for x, y in zip(corpusstats.dense_moments_of(ivf.rows, len(decoded), 16, block),
                                                         (mean, second)))
    write(tmp_path / "blocks", demo)
    assert same_files(tmp_path / "whole", tmp_path / "blocks") == []


@pytest.mark.parametrize("block", [1, 3, 40, 10**9])
def test_the_transpose_is_made_in_one_pass_by_rows(block, tmp_path):
    """Mᵀ (mentionmatrix.transpose) reads M by rows only (before: M sliced by columns
    once per block of Mᵀ: about 114 scans of M at 1M articles): the arrays SciPy makes, in memory or mapped."""

    class RowsOnly(sparse.csr_matrix):
        def __getitem__(self, key):
            if isinstance(key, tuple) and not (isinstance(key[1], slice) and key[1] == slice(None)):
                raise AssertionError(f"M sliced by columns: {key}")
            return super().__getitem__(key)

    rng = np.random.default_rng(1)
    m = sparse.random(300, 300, density=0.03, format="csr", dtype=np.float32, random_state=rng)
    m = (m + sparse.csr_matrix(m.T.toarray()[:, :] * (rng.random((300, 300)) < 0.3))).tocsr()  # some both ways
    m.setdiag(0)
    m.eliminate_zeros()
    m.sort_indices()
    expected = m.T.tocsr()
    expected.sort_indices()
    rows_only = RowsOnly(m)
    for files in (None, tmp_path / f"t{block}"):
        turned = mentionmatrix.transpose(rows_only, files, block)
        for part in ("data", "indices", "indptr"):
            got, want = getattr(turned, part), getattr(expected, part)
            assert got.dtype == want.dtype and np.array_equal(got, want), part
        assert files is None or mapped(turned.indices) and mapped(turned.data)


def test_the_mention_matrix_is_mapped_from_the_saved_file(tmp_path):
    m = sparse.random(50, 50, density=0.1, format="csr", dtype=np.float32, random_state=3)
    lexical = LexicalIndex(sparse.csr_matrix((50, 2), dtype=np.float32), ["a", "b"], np.ones(2), m)
    lexical.save(tmp_path / "lex.npz", tmp_path / "lex.json")
    lexical.map_mentions(tmp_path / "lex.npz")
    assert all(mapped(getattr(lexical.mentions, part)) for part in ("data", "indices", "indptr"))
    assert (lexical.mentions != m).nnz == 0 and lexical.mentions.shape == m.shape


def test_the_batch_reads_the_stored_lexical_arrays_mapped(demo, tmp_path, monkeypatch):
    """An opened index's lexical index (what the batch ranks with) maps M and the TF-IDF from the lexical file
    and takes M + Mᵀ and the postings from the query data (before: read into memory, M + Mᵀ made again: at 1M
    articles about 20 GB); a learned graph built in process (the batch's vectors over an approximate index) reads
    the stored Mᵀ. The same arrays as made from the loaded index."""
    from recommender.rank.index import Index
    from recommender.rank.learned import graph_facts, load_model

    monkeypatch.setattr(build, "build_for_size", lambda vectors: annmodule.build_for_size(vectors, flat_max=10))
    write(tmp_path / "index", demo)
    folder = tmp_path / "index"
    manifest = json.loads((folder / "manifest.json").read_text())
    plain = LexicalIndex.load(folder / manifest["files"]["lexical"]["name"],
                              folder / manifest["files"]["lexicon"]["name"])
    with Index.open(folder) as index:
        lexical = index.data.lexical
        assert all(mapped(getattr(getattr(lexical, m), p)) for m in ("tfidf", "mentions")
                   for p in ("data", "indices", "indptr"))
        arrays, made = lexical.csr_arrays(), plain.csr_arrays()
        for name in ("tfidf", "postings"):
            assert all(mapped(a) and np.array_equal(a, b) for a, b in zip(arrays[name], made[name])), name
        both = arrays["mentions"]  # M + Mᵀ by rows: M from the lexical file, Mᵀ from the query data, both mapped
        assert all(mapped(a) for a in both.mentions + both.turned)
        for row in range(index.data.manifest.count):
            assert all(np.array_equal(a, b) for a, b in zip(both.row(row), made["mentions"].row(row)))
        model = load_model(folder)
        graph = index.data.link_graphs(model, vectors=demo[1])
        assert index.data.approximate and mapped(graph.mentions_t.indices)
        built = graph_facts(demo[1], plain, model, index.data.store.ids())
        for part in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(graph.mentions_t, part), getattr(built.mentions_t, part))
