"""What the index build makes block by block equals the one-piece construction it replaced, array for array,
whatever the block size: the mention matrix (store.mentionmatrix; before: lists of every entry, one COO -> CSR
conversion), the impact-ordered postings (store.lextopk.impact_order) and the window codes (windowfiles.quantize)."""

import numpy as np
import pytest
from scipy import sparse

from recommender.ingest.reader import read_corpus
from recommender.store import lextopk, mentionmatrix, windowfiles
from recommender.store.lexindex import LexicalIndex, lexical_document
from recommender.store.mentionmatrix import mention_block, name_counts, name_owners, name_weights, names_in

from conftest import DEMO


def one_piece(owners, found, weights, first, n):
    """The construction before the blocks: every entry in Python lists, then one COO -> CSR conversion."""
    rows, cols, data = [], [], []
    for r, names in enumerate(found):
        for name in sorted(names):
            weight = weights[name]
            for b in owners[name]:
                if b != first + r and weight > 0:
                    rows.append(r)
                    cols.append(b)
                    data.append(weight)
    matrix = sparse.coo_matrix((np.array(data, dtype=np.float32), (rows, cols)), shape=(len(found), n)).tocsr()
    return matrix, len(data)


@pytest.fixture(scope="module")
def corpus():
    """The demo corpus plus pages naming its articles, some twice (title and id: entries summed), one naming
    itself, and a name found in every text (weight 0: no entry)."""
    articles = read_corpus(DEMO).articles
    ids, rows = [a.id for a in articles], [(a.title, a.excerpt, a.body) for a in articles]
    for i, a in enumerate(articles[:40]):
        other = articles[-1 - i]
        ids.append(f"notes/{i}")
        rows.append((f"Notes {i}", "", f"See {a.title} and {other.title}; also {a.id.rsplit('/', 1)[-1]}, "
                                        f"and Notes {i} itself."))
    ids += ["topics/gamma-delta", "topics/zeta", "reader"]  # two and three names of one article found in one text
    rows += [("Gamma Delta — Epsilon", "", "Greek."), ("Eta Theta | Iota", "", "More Greek."),
             ("Reader", "", "Read Gamma Delta — Epsilon, then Eta Theta | Iota (zeta).")]
    ids.append("everywhere")
    rows = [(t, e, (b or e) + " everywhere") for t, e, b in rows] + [("Everywhere", "", "everywhere")]
    owners = name_owners(ids, [r[0] for r in rows])
    found = [names_in(lexical_document(t, b or e), owners) for t, e, b in rows]
    return ids, rows, owners, found


def same_csr(a, b):
    return (a.shape == b.shape and a.dtype == b.dtype and a.indptr.dtype == b.indptr.dtype
            and a.indices.dtype == b.indices.dtype and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


@pytest.mark.parametrize("block", [1, 2, 7, 50, 10**9])
def test_blocks_equal_the_one_piece_matrix(corpus, block, monkeypatch):
    ids, rows, owners, found = corpus
    weights = name_weights(name_counts(found), len(found))
    assert weights["everywhere"] == 0.0
    expected, entries = one_piece(owners, found, weights, 0, len(ids))
    assert expected.nnz > 40 and entries > expected.nnz  # some entries summed (two names of one article)
    monkeypatch.setattr(mentionmatrix, "MENTION_BLOCK", block)
    got = mention_block(owners, found, weights, 0, len(ids))
    assert same_csr(got, expected)
    assert not got.diagonal().any()  # no article mentions itself
    first = 45  # a shard's rows (lexshards): the self-mention rule on the global row
    assert same_csr(mention_block(owners, found[first:], weights, first, len(ids)),
                    one_piece(owners, found[first:], weights, first, len(ids))[0])


def test_the_build_keeps_its_mentions_and_found_names(corpus, monkeypatch):
    ids, rows, owners, found = corpus
    monkeypatch.setattr(mentionmatrix, "MENTION_BLOCK", 3)
    index = LexicalIndex.build(ids, rows)
    weights = name_weights(name_counts(found), len(found))
    assert same_csr(index.mentions, one_piece(owners, found, weights, 0, len(ids))[0])
    assert index.name_weights == weights and list(index.name_weights) == list(weights)
    names, matrix = index.found
    assert names == sorted(owners)
    assert [{names[j] for j in matrix.indices[matrix.indptr[r]:matrix.indptr[r + 1]]} for r in range(len(ids))] == found


@pytest.mark.parametrize("block,shuffled", [(1, False), (5, False), (10**9, False), (10**9, True)])
def test_impact_order_by_blocks_equals_one_sort(corpus, block, shuffled, monkeypatch):
    """By blocks of terms, and by one stable sort on (term, value) keys where each term's documents ascend (a
    sorted CSR), else the lexsort: the same order, ties to the lower document."""
    ids, rows, _, _ = corpus
    postings = LexicalIndex.build(ids, rows).tfidf.T.tocsr()
    postings.sort_indices()
    indptr, indices, data = postings.indptr, postings.indices, postings.data
    data = np.round(data, 1).astype(data.dtype)  # many equal values within a term: ties decided by the document
    if shuffled:  # each term's postings in another order
        rng = np.random.default_rng(0)
        order = np.concatenate([a + rng.permutation(b - a) for a, b in zip(indptr[:-1], indptr[1:])])
        indices, data = indices[order], data[order]
    term = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.lexsort((indices, -data, term))  # the sort before the blocks
    monkeypatch.setattr(lextopk, "IMPACT_BLOCK", block)
    got_indices, got_data = lextopk.impact_order(indptr, indices, data)
    assert got_indices.dtype == indices.dtype and np.array_equal(got_indices, indices[order])
    assert np.array_equal(got_data, data[order]) and not np.array_equal(got_data, data)


def test_window_codes_by_blocks_equal_one_pass(monkeypatch):
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float16)
    vectors[3] = 0
    whole = windowfiles.quantize_block(vectors)  # the one pass over every window, as before
    monkeypatch.setattr(windowfiles, "QUANTIZE_BLOCK", 7)
    codes, scales = windowfiles.quantize(vectors)
    assert codes.dtype == np.int8 and np.array_equal(codes, whole[0]) and np.array_equal(scales, whole[1])


@pytest.fixture(scope="module")
def built_mentions(corpus):
    ids, rows, _, _ = corpus
    return LexicalIndex.build(ids, rows).mentions


def test_mentions_both_ways_read_by_rows_from_m_and_its_transpose_equal_the_whole_sum(built_mentions):
    """M + Mᵀ is not stored: its rows are read from M and Mᵀ (store.bothways.BothWays), the very columns and float32
    values of SciPy's whole sum (entries both ways added, sorted); an index written before, with the sum stored,
    reads the same rows (Summed)."""
    from recommender.store.bothways import BothWays, Summed

    mentions = built_mentions
    n = mentions.shape[0]  # and pairs that name each other: the first 20 rows name back who names them
    back = sparse.vstack([mentions.T.tocsr()[:20] * np.float32(0.5), sparse.csr_matrix((n - 20, n), dtype=np.float32)])
    mentions = (mentions + back).tocsr()
    mentions.sort_indices()
    whole = (mentions + mentions.T.tocsr()).tocsr()
    whole.sort_indices()
    assert (whole != whole.T).nnz == 0 and whole.nnz < 2 * mentions.nnz  # some pairs name each other
    turned = mentionmatrix.transpose(mentions)
    both = BothWays((mentions.indptr, mentions.indices, mentions.data), (turned.indptr, turned.indices, turned.data), n)
    stored = Summed((whole.indptr, whole.indices, whole.data), n)
    twice = 0
    for row in range(n):
        a, b = whole.indptr[row], whole.indptr[row + 1]
        for cols, values in (both.row(row), stored.row(row)):
            assert cols.dtype == np.int64 and values.dtype == np.float32
            assert np.array_equal(cols, whole.indices[a:b]) and np.array_equal(values, whole.data[a:b]), row
        twice += len(mentions[row].indices) + len(turned[row].indices) - (b - a)
    assert twice and not both.negative() and not stored.negative()


def test_the_mention_matrix_holds_no_array_the_size_of_the_names_found():
    """mention_csr's memory beside its result is one block's work, not arrays the size of the names found (at 1M
    articles, hundreds of millions of entries: before, three int64 arrays of that size were made)."""
    import tracemalloc

    rows, per_row, names = 20_000, 50, 20_000
    rng = np.random.default_rng(0)
    columns = np.sort(rng.choice(names, (rows, per_row), replace=True), axis=1)
    columns = np.array([np.unique(r) for r in columns], dtype=object)
    indptr = np.concatenate(([0], np.cumsum([len(r) for r in columns]))).astype(np.int64)
    found = mentionmatrix.found_matrix(np.concatenate(columns).astype(np.int32), indptr, names)
    owned = (np.arange(names + 1, dtype=np.int64), rng.permutation(names).astype(np.int64))  # one owner a name
    weights = np.ones(names, dtype=np.float64)
    expected = mentionmatrix.mention_csr(found, owned, weights, 0, rows, block=10**9)  # one block
    tracemalloc.start()
    got = mentionmatrix.mention_csr(found, owned, weights, 0, rows, block=50_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert same_csr(got, expected) and found.nnz > 900_000
    result = got.data.nbytes + got.indices.nbytes + got.indptr.nbytes
    assert peak < result + 8 * 2**20, (peak, result)  # before: result + 3 x 8 bytes a name found (+ 24 MB)


def test_a_mapped_array_is_a_plain_view_and_a_broken_file_names_itself_and_the_remedy(tmp_path):
    """npyfiles.mapped_npy (the query data's and the learned arrays' reader): a plain ndarray over the mapped file
    (no memmap wrapper per lookup); a truncated file is an IndexProblem naming the file and what to run."""
    from recommender.store.manifest import IndexProblem
    from recommender.store.npyfiles import mapped_npy

    path = tmp_path / "a.npy"
    np.save(path, np.arange(10, dtype=np.int32), allow_pickle=False)
    array = mapped_npy(path, "rebuild the index")
    assert type(array) is np.ndarray and not array.flags.owndata and array.tolist() == list(range(10))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(IndexProblem, match=r"a\.npy: cannot read .*; rebuild the index"):
        mapped_npy(path, "rebuild the index")
