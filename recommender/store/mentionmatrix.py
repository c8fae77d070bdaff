"""Mentions: the names by which texts refer to articles (`article_names`: a title, its part before a separator, the
last segment of the id), the names found in each text (`names_in`, whole words within MENTION_TEXT_LIMIT
characters), their IDF weights, and the mention matrix store.lexindex stores (M[a, b]: the summed weights of b's
names found in a's text, self excluded), made block by block straight into arrays, so a build holds the matrix
itself plus one block's work, whatever the corpus's size.

    matrix = mention_csr(found, owner_arrays(names, owners), column_weights(names, weights), first, n)

`found` is the rows x names 0/1 CSR matrix of the names found in each text (columns: every name, sorted, as
`found_arrays` and `lexindex.scan_names` make it). A block expands its rows' found names into one
entry per owner (in the order a row's names sort, then the owners' rows), drops self-mentions and names of
weight 0, and is turned into CSR by the same SciPy conversion the whole matrix went through before (COO, then
duplicates summed in its per-row order): each row's entries and float sums are those of a conversion of the
whole, so the stored matrix is byte for byte the same. At most `block` entries are expanded at a time (about
29 bytes each), and the result is written into arrays of the final size (int32 columns and float32 values,
8 bytes an entry, int64 columns above 2^31 entries as SciPy would choose).
"""

from __future__ import annotations

import math
import re
from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common.blocks import runs
from .lexical import sparse

WORD = re.compile(r"\w+")
MAX_NAME_WORDS = 4
MIN_NAME_CHARS = 3
TITLE_SEPARATORS = (" — ", " – ", " | ")
MENTION_TEXT_LIMIT = 20000

MENTION_BLOCK = 4_000_000  # entries expanded at a time (about 120 MB of work)
BOTH_BLOCK = 16_000_000  # entries of a matrix written at a time by row_blocks, at most (about 400 MB of work)


def article_names(article_id: str, title: str) -> set[str]:
    """The names by which other texts refer to an article, as lowercase word sequences of 1-4 words."""
    title = (title or "").strip().lower()
    names = {title}
    for sep in TITLE_SEPARATORS:
        if sep in title:
            names.add(title.split(sep)[0])
    names.add(article_id.rstrip("/").rsplit("/", 1)[-1].replace("_", " ").replace("-", " ").lower())
    out = set()
    for name in names:
        words = WORD.findall(name)
        joined = " ".join(words)
        if 1 <= len(words) <= MAX_NAME_WORDS and len(joined) >= MIN_NAME_CHARS and not joined.isdigit():
            out.add(joined)
    return out


def name_owners(ids: Sequence[str], titles: Sequence[str]) -> dict[str, list[int]]:
    """Each name -> the rows (in order) of the articles it names."""
    owners: dict[str, list[int]] = {}
    for row, (article_id, title) in enumerate(zip(ids, titles)):
        for name in article_names(article_id, title):
            owners.setdefault(name, []).append(row)
    return owners


def names_in(text: str, owners: dict[str, list[int]] | set[str]) -> set[str]:
    """The names (keys of owners) that occur in a text as whole words, within its first MENTION_TEXT_LIMIT chars."""
    words = WORD.findall(text[:MENTION_TEXT_LIMIT].lower())
    seen = set()
    for n in range(1, MAX_NAME_WORDS + 1):
        for i in range(len(words) - n + 1):
            gram = " ".join(words[i:i + n])
            if gram in owners:
                seen.add(gram)
    return seen


def occurs(name: str, lowered: str) -> bool:
    """Whether a name occurs in an already lowercased text as consecutive whole words, as names_in finds it
    (its words are runs of word characters, so consecutive words are separated by non-word characters only)."""
    words = name.split(" ")
    if any(word not in lowered for word in words):
        return False
    pattern = r"(?<!\w)" + r"\W+".join(re.escape(word) for word in words) + r"(?!\w)"
    return re.search(pattern, lowered) is not None


def mention_matrix(ids: Sequence[str], titles: Sequence[str], texts: Sequence[str],
                   frozen: dict[str, float] | None = None) -> tuple[sparse.csr_matrix, dict[str, float]]:
    """M[a, b] = sum of IDF weights of b's names found in a's text (whole words), self excluded; and the weight
    of each name found. `frozen`: weights kept from an earlier fit (names not in it get their IDF here)."""
    owners = name_owners(ids, titles)
    found = [names_in(text, owners) for text in texts]
    weights = name_weights(name_counts(found), len(found), frozen)
    return mention_block(owners, found, weights, 0, len(found)), {**(frozen or {}), **weights}


def name_counts(found: Sequence[set[str]]) -> dict[str, int]:
    """How many texts each name is found in."""
    df: dict[str, int] = {}
    for seen in found:
        for gram in seen:
            df[gram] = df.get(gram, 0) + 1
    return df


def name_weights(df: dict[str, int], n_docs: int, frozen: dict[str, float] | None = None) -> dict[str, float]:
    """Each found name's weight: its IDF over n_docs texts, or the weight `frozen` keeps for it."""
    n_docs = max(1, n_docs)
    frozen = frozen or {}
    return {name: frozen[name] if name in frozen else math.log(n_docs / count) for name, count in df.items()}


def mention_block(owners: dict[str, list[int]], found: Sequence[set[str]], weights: dict[str, float],
                  first: int, n: int) -> sparse.csr_matrix:
    """Rows first..first+len(found) of the mention matrix (n columns): the names found in each of those texts."""
    names, matrix = found_arrays(owners, found)
    return mentions_of(owners, (names, matrix), weights, first, n)


def mentions_of(owners: dict[str, list[int]], found: tuple[list[str], sparse.csr_matrix],
                weights: dict[str, float], first: int, n: int) -> sparse.csr_matrix:
    """mention_block from the names found as arrays (found_arrays, scan_names), made block by block
    (store.mentionmatrix): M[a, b] = the weights of b's names found in a's text summed, self excluded."""
    names, matrix = found
    return mention_csr(matrix, owner_arrays(names, owners), column_weights(names, weights), first, n)


def found_arrays(owners: dict[str, list[int]], found: Sequence[set[str]]) -> tuple[list[str], sparse.csr_matrix]:
    """(every name, sorted; rows x names 0/1 matrix of the names found in each row): what an update reuses."""
    names = sorted(owners)
    column = {name: j for j, name in enumerate(names)}
    indptr, indices = [0], []
    for seen in found:
        indices.extend(sorted(column[name] for name in seen))
        indptr.append(len(indices))
    return names, found_matrix(np.array(indices, dtype=np.int32), np.array(indptr, dtype=np.int64), len(names))


def found_matrix(indices: np.ndarray, indptr: np.ndarray, names: int) -> sparse.csr_matrix:
    data = np.ones(len(indices), dtype=np.int8)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, names))


def owner_arrays(names: Sequence[str], owners: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, rows): the rows owning names[j] are rows[indptr[j]:indptr[j + 1]], in owners' order."""
    counts = np.fromiter((len(owners[name]) for name in names), dtype=np.int64, count=len(names))
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    rows = np.fromiter(chain.from_iterable(owners[name] for name in names), dtype=np.int64, count=int(indptr[-1]))
    return indptr, rows


def column_weights(names: Sequence[str], weights: dict[str, float]) -> np.ndarray:
    """float64 weight of each name column (0 for a name found nowhere, which adds no entry)."""
    return np.fromiter((weights.get(name, 0.0) for name in names), dtype=np.float64, count=len(names))


def mention_csr(found, owned: tuple[np.ndarray, np.ndarray], weights: np.ndarray, first: int, n: int,
                block: int | None = None, selves: np.ndarray | None = None):
    """Rows first..first + found.shape[0] of the mention matrix (n columns) as a SciPy CSR matrix, made at most
    `block` expanded entries at a time. found: rows x names CSR with sorted columns; owned: owner_arrays;
    weights: column_weights; selves: each found row's own row of the matrix (its self-mention dropped), when the
    rows are not first, first + 1, ... (store.mentionreuse makes some rows only). Nothing the size of `found` or
    of the unsummed entries is made besides the result (at 1M articles the names found are hundreds of
    millions): each row's entry count is summed a block of rows at a time, and the result's arrays, sized for
    the entries before duplicates are summed, are cut to its own."""
    block = MENTION_BLOCK if block is None else block
    owner_ptr, owner_rows = owned
    found_ptr = np.asarray(found.indptr, dtype=np.int64)
    rows = len(found_ptr) - 1
    per_name = np.where(weights > 0, np.diff(owner_ptr), 0)  # the entries a found name gives: its owners
    row_before = np.zeros(rows + 1, dtype=np.int64)  # entries before each row (duplicates not yet summed)
    for start, stop in runs(found_ptr, block):
        a = int(found_ptr[start])
        summed = np.concatenate(([0], np.cumsum(per_name[found.indices[a:int(found_ptr[stop])]])))
        row_before[start + 1:stop + 1] = summed[found_ptr[start + 1:stop + 1] - a]
        row_before[start + 1:stop + 1] += row_before[start]
    values = weights.astype(np.float32)  # each weight as the float32 it is stored as
    upper = int(row_before[-1])  # entries before duplicates are summed: the matrix has at most this many
    wide = max(upper, n) > np.iinfo(np.int32).max
    out_indices = np.empty(upper, dtype=np.int64 if wide else np.int32)
    out_data = np.empty(upper, dtype=np.float32)
    out_indptr = np.zeros(rows + 1, dtype=np.int64)
    nnz = 0
    for start, stop in runs(row_before, block):
        part = expand_rows(found_ptr, found.indices, per_name, owner_ptr, owner_rows, values, start, stop, first, n,
                           selves)
        count = part.nnz
        out_indices[nnz:nnz + count] = part.indices
        out_data[nnz:nnz + count] = part.data
        out_indptr[start + 1:stop + 1] = part.indptr[1:] + nnz
        nnz += count
    out_indices.resize(nnz, refcheck=False)  # in place (realloc): no copy of the matrix
    out_data.resize(nnz, refcheck=False)
    return sparse.csr_matrix((out_data, out_indices, out_indptr), shape=(rows, n))


def expand_rows(found_ptr, found_columns, per_name, owner_ptr, owner_rows, values, start: int, stop: int,
                first: int, n: int, selves: np.ndarray | None = None):
    """Rows start..stop (of the block's found matrix) as CSR: one entry per (found name, owner), self excluded
    (row first + i, or selves[i]), duplicates summed by SciPy's COO -> CSR conversion."""
    a, b = int(found_ptr[start]), int(found_ptr[stop])
    names = np.asarray(found_columns[a:b], dtype=np.int64)
    counts = per_name[names]
    total = int(counts.sum())
    local = np.repeat(np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(found_ptr[start:stop + 1])), counts)
    # position in owner_rows of each entry: its name's first owner, plus its place among the name's owners
    before = np.cumsum(counts) - counts  # entries of the block before each found name
    at = np.repeat(owner_ptr[names] - before, counts) + np.arange(total, dtype=np.int64)
    cols = owner_rows[at]
    keep = cols != (local + (first + start) if selves is None else np.asarray(selves, np.int64)[local + start])
    data = np.repeat(values[names], counts)
    matrix = sparse.coo_matrix((data[keep], (local[keep], cols[keep])), shape=(stop - start, n))
    return matrix.tocsr()  # duplicates (two names of b in a) are summed, as for the whole matrix


def _turned_at_once(mentions: sparse.csr_matrix, files: Path | None) -> sparse.csr_matrix:
    """transpose's result made by SciPy (M as CSC is Mᵀ as CSR, each column's rows in order), its arrays written
    to files as transpose writes them when asked."""
    turned_columns = mentions.tocsc()
    arrays = {"indptr": turned_columns.indptr, "indices": turned_columns.indices, "data": turned_columns.data}
    if files is not None and mentions.nnz:
        for part, array in arrays.items():
            with open(f"{files}_{part}", "wb") as handle:
                np.save(handle, array, allow_pickle=False)
        arrays.update((part, np.load(f"{files}_{part}", mmap_mode="r", allow_pickle=False))
                      for part in ("indices", "data"))
    turned = sparse.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                               shape=mentions.shape[::-1], copy=False)
    turned.has_sorted_indices = True
    return turned


def row_blocks(matrix: sparse.csr_matrix, block: int | None = None):
    """A CSR matrix as runs of whole rows of at most `block` entries (or one row) each."""
    block = BOTH_BLOCK if block is None else block
    for start, stop in runs(matrix.indptr, block):
        yield matrix[start:stop]


TURN_BLOCK = 4_000_000  # entries of M placed at a time by `transpose` (about 250 MB of work)
TURN_AT_ONCE = 4 * TURN_BLOCK  # up to this many entries SciPy's conversion turns M in one go (128 MB made)


def transpose(mentions: sparse.csr_matrix, files: Path | None = None, block: int | None = None) -> sparse.csr_matrix:
    """Mᵀ, as `M.T.tocsr()` with sorted indices, made in one pass over M's rows (a counting sort: each column's
    count first, then each block of at most `block` entries placed in its columns' rows, in row order), so M is
    read by rows, never sliced by columns, and one block's work is held besides the result. files: the result's
    arrays written to `{files}_indptr`, `_indices`, `_data` (.npy) and read back mapped (at 1M articles Mᵀ is
    GBs); else in memory. Index arrays int32 unless the entries or M's rows need int64, as SciPy makes them.
    Up to TURN_AT_ONCE entries SciPy's own conversion (`tocsc`, the same arrays: its columns in row order) does it
    in one go, about 20x faster (MDN's 4.2M entries: 0.03-0.07 s against 0.6-0.97 s)."""
    block = TURN_BLOCK if block is None else block
    if mentions.nnz <= TURN_AT_ONCE and block >= TURN_BLOCK:
        return _turned_at_once(mentions, files)
    rows, columns = mentions.shape
    ptr = np.asarray(mentions.indptr, dtype=np.int64)
    spans = list(runs(ptr, block))
    counts = np.zeros(columns, dtype=np.int64)
    for start, stop in spans:
        counts += np.bincount(mentions.indices[ptr[start]:ptr[stop]], minlength=columns)
    nnz = int(counts.sum())
    index = np.dtype(np.int64 if max(nnz, rows) > np.iinfo(np.int32).max else np.int32)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(index)
    dtype = np.dtype(mentions.dtype)
    if files is None or nnz == 0:
        indices, data = np.empty(nnz, dtype=index), np.empty(nnz, dtype=dtype)
    else:
        paths = {part: Path(f"{files}_{part}") for part in ("indptr", "indices", "data")}
        with open(paths["indptr"], "wb") as handle:
            np.save(handle, indptr, allow_pickle=False)
        indices = np.lib.format.open_memmap(paths["indices"], mode="w+", dtype=index, shape=(nnz,))
        data = np.lib.format.open_memmap(paths["data"], mode="w+", dtype=dtype, shape=(nnz,))
    fill = indptr[:-1].astype(np.int64)  # the next free place of each column's row of Mᵀ
    for start, stop in spans:
        a, b = int(ptr[start]), int(ptr[stop])
        if a == b:
            continue
        cols = np.asarray(mentions.indices[a:b])
        order = np.argsort(cols, kind="stable")  # by column; within a column, M's rows in order
        by_column = cols[order]
        starts = np.flatnonzero(np.concatenate(([True], by_column[1:] != by_column[:-1])))
        rank = np.arange(b - a, dtype=np.int64) - np.repeat(starts, np.diff(np.append(starts, b - a)))
        place = fill[by_column] + rank
        owners = np.repeat(np.arange(start, stop, dtype=index), np.diff(ptr[start:stop + 1]))
        indices[place] = owners[order]
        data[place] = np.asarray(mentions.data[a:b])[order]
        fill += np.bincount(cols, minlength=columns)
    if files is not None and nnz:
        indices.flush()
        data.flush()
        del indices, data
        indices, data = (np.load(paths[part], mmap_mode="r", allow_pickle=False) for part in ("indices", "data"))
    turned = sparse.csr_matrix((data, indices, indptr), shape=(columns, rows), copy=False)
    turned.has_sorted_indices = True
    return turned
