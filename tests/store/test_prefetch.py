"""The compiled loops' prefetch hint (store.prefetch): the loops read the same numbers with it, and where LLVM does
not take it they are compiled without it rather than given up."""

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from recommender.store import compiledscores, compiledtopk  # noqa: E402


def test_the_hinted_loops_read_rows_at_every_place_of_an_array():
    # rows at the array's two ends and repeated, spans of every length including none: the hint never faults and
    # the numbers are NumPy's
    kernel = compiledtopk._kernel("row_dots")
    assert kernel is not None and compiledscores.prefetch_span is not compiledscores.PLAIN[1]
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 40, 300)
    lengths[[0, -1]] = [0, 37]
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    indices = rng.integers(0, 50, indptr[-1]).astype(np.int32)
    data = rng.random(indptr[-1]).astype(np.float32)
    dense = rng.random(50).astype(np.float32)
    rows = np.array([299, 0, 5, 5, 299, *rng.integers(0, 300, 100)], np.int64)
    out = np.empty(len(rows), np.float32)
    kernel(indptr, indices, data, rows, dense, out)
    want = [np.float32(0) + sum((data[j] * dense[indices[j]] for j in range(indptr[r], indptr[r + 1])),
                                np.float32(0)) for r in rows]
    assert np.array_equal(out, np.array(want, np.float32))


def test_the_candidates_vectors_are_copied_out_as_numpy_copies_them(tmp_path):
    # rows at both ends, repeated, fewer than the rows prefetched ahead and none; a memmap, a view that is not
    # C-ordered and a row reader (no ndarray) take NumPy's or their own indexing; the product after is the same
    kernel = compiledtopk._kernel("gather_rows")
    assert kernel is not None
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((500, 384)).astype(np.float32)
    query = rng.standard_normal(384).astype(np.float32)
    for rows in ([499, 0, 7, 7, 499, *rng.integers(0, 500, 700)], [3, 2], [], list(range(500))):
        rows = np.array(rows, np.int64)
        got = compiledscores.gather_rows(kernel, vectors, rows)
        assert got.dtype == np.float32 and got.shape == (len(rows), 384) and got.flags.c_contiguous
        assert np.array_equal(got, vectors[rows]) and np.array_equal(got @ query, vectors[rows] @ query)
    rows = np.array([5, 1, 5], np.int64)
    np.save(tmp_path / "vectors.npy", vectors)
    mapped = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    assert np.array_equal(compiledscores.gather_rows(kernel, mapped, rows), vectors[rows])
    strided = vectors[:, ::2]
    assert np.array_equal(compiledscores.gather_rows(kernel, strided, rows), strided[rows])

    class Reader:
        def __getitem__(self, rows):
            return vectors[rows] * 2

    assert np.array_equal(compiledscores.gather_rows(kernel, Reader(), rows), vectors[rows] * 2)


def test_a_loop_is_compiled_without_the_hint_when_it_cannot_take_it(monkeypatch):
    built = compiledtopk._built
    tries = []

    def refusing(numba_module, function, check, fastmath, cache=True):
        tries.append(cache)
        if cache:  # the hinted loop
            raise RuntimeError("no such intrinsic")  # what an LLVM without llvm.prefetch.p0i8 would raise
        assert compiledscores.prefetch_row.py_func is compiledscores.PLAIN[0]
        return built(numba_module, function, check, fastmath, cache)

    monkeypatch.setattr(compiledtopk, "_built", refusing)
    monkeypatch.setattr(compiledscores, "prefetch_row", compiledscores.prefetch_row)
    monkeypatch.setattr(compiledscores, "prefetch_span", compiledscores.prefetch_span)
    kernel = compiledtopk._compiled("window_products")
    assert tries == [True, False] and kernel is not None
    codes = np.arange(-60, 60, dtype=np.int8).reshape(10, 12)
    query = np.ones((2, 12), np.float32)
    assert np.array_equal(compiledscores.stored_products(kernel, codes, np.array([9, 0]), query),
                          query @ codes[[9, 0]].astype(np.float32).T)
