"""The mention rows an update keeps (store.lexindex.LexicalIndex.updated): M made again only where it can change.

M[a, b] sums the weights of b's names found in a's text, self excluded (store.mentionmatrix). A row of M is
therefore a function of three things: the names found in its text, each such name's owners (the articles it
names), and each such name's weight. An update keeps the last build's names for an unchanged text and its frozen
weights for every name it had, so the row of an unchanged text is the row the last build made whenever

* its names found are the same names as then (no name it held stopped naming an article, no new name occurs in
  it), and
* none of them is *dirty*: owned by other articles than then, or weighed otherwise.

Those rows are copied from the last build's M, their columns renumbered from the old rows to the new (an article
added or removed shifts them). Only the others (new and changed texts, and the texts holding a dirty name) go
through `mention_csr`, with their own rows as the selves it drops. The entries and their float32 sums are then
those a full `mentions_of` gives, byte for byte (tests/store/test_lexindex_update.py compares them), at the cost
of the changed rows instead of every row: on MDN's 1% change (146 texts), `LexicalIndex.updated` took 0.59-0.62 s
instead of 0.78-0.87 s (the same process, repeated), the same 4,221,782 entries.

A name can only become dirty through an article that owns it now or owned it then and whose title or row set
changed: a new, changed or removed article. Only their names are compared. When the surviving articles change
their order, copied rows would need their columns sorted again: then nothing is reused (None), and the caller makes
M in full, as it did before.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..common.blocks import runs
from .lexical import sparse
from .mentionmatrix import (MENTION_BLOCK as BLOCK, article_names, column_weights, mention_csr, name_owners,
                            owner_arrays)


def reused_mentions(old_mentions, old_found: tuple[list[str], object], old_ids: Sequence[str],
                    old_titles: Sequence[str], old_weights: dict[str, float], ids: Sequence[str],
                    titles: Sequence[str], owners: dict[str, list[int]], found: tuple[list[str], object],
                    weights: dict[str, float], kept: dict[int, int]):
    """The new mention matrix (CSR, len(ids) square) from the last build's (`old_mentions`, made from `old_found`
    names with `old_weights` over the articles `old_ids` titled `old_titles`) and this update's names found
    (`found`), `owners` and `weights`; kept: new row -> old row of each text unchanged since. None when the rows'
    order changed (the caller makes M in full)."""
    n, names = len(ids), found[0]
    new_row = {article_id: r for r, article_id in enumerate(ids)}
    to_new = np.fromiter((new_row.get(article_id, -1) for article_id in old_ids), dtype=np.int64,
                         count=len(old_ids))
    alive = to_new[to_new >= 0]
    if len(alive) > 1 and bool((np.diff(alive) <= 0).any()):
        return None
    column = {name: j for j, name in enumerate(names)}
    weight = column_weights(names, weights)
    dirty = np.zeros(len(names), dtype=bool)
    # an unchanged text's article has the same id and title (its lexical document holds the title), so the names
    # it owns are the same: a name's owners then are its unchanged owners now and the changed or removed articles
    # that owned it then
    unchanged = set(kept.values())
    changed_old = [p for p in range(len(old_ids)) if p not in unchanged]  # changed or removed since
    old_only = name_owners([old_ids[p] for p in changed_old], [old_titles[p] for p in changed_old])
    touched = set(old_only).union(*(article_names(ids[r], titles[r]) for r in range(n) if r not in kept))
    for name in touched:  # the names of an article new, changed or removed since (as titled then and now)
        j = column.get(name)
        if j is None:
            continue
        now = owners.get(name, [])
        then = sorted([r for r in now if r in kept] + [int(to_new[changed_old[i]]) for i in old_only.get(name, [])])
        dirty[j] = then != now or np.float32(old_weights.get(name, 0.0)) != np.float32(weight[j])
    reuse = _reusable(found, dirty, kept, np.asarray(old_found[1].indptr, np.int64), n)
    return _assembled(old_mentions, to_new, reuse, found, owner_arrays(names, owners), weight, n)


def _reusable(found, dirty: np.ndarray, kept: dict[int, int], old_ptr: np.ndarray, n: int) -> np.ndarray:
    """Per new row: its old row when its M row is the last build's (see the module docstring), else -1.

    A kept text's names found are its old ones renumbered, less those that name nothing now, plus the new names
    found in it (LexicalIndex._found_again). A new name is owned by new or changed articles alone (a kept article
    has the title and id it had, so the names it had), so it is dirty (no owners then). A kept text holding no
    dirty name therefore gained none, and holds the names it held when it holds as many as then. Nothing the
    size of the names found is made (at 1M articles they are hundreds of millions)."""
    matrix = found[1]
    new_ptr = np.asarray(matrix.indptr, np.int64)
    holds_dirty = (matrix @ dirty.astype(np.int8)) > 0 if dirty.any() else np.zeros(n, dtype=bool)
    source = np.full(n, -1, dtype=np.int64)
    if kept:
        new_rows = np.fromiter(kept.keys(), dtype=np.int64, count=len(kept))
        old_rows = np.fromiter(kept.values(), dtype=np.int64, count=len(kept))
        same = (np.diff(new_ptr)[new_rows] == np.diff(old_ptr)[old_rows]) & ~holds_dirty[new_rows]
        source[new_rows[same]] = old_rows[same]
    return source


def _assembled(old_mentions, to_new: np.ndarray, source: np.ndarray, found, owned, weight: np.ndarray, n: int):
    """M: the rows with a source copied (columns renumbered), the others made by mention_csr; a block of at most
    BLOCK entries at a time."""
    made_rows = np.flatnonzero(source < 0)
    made = mention_csr(found[1][made_rows], owned, weight, 0, n, selves=made_rows)
    made_ptr, old_ptr = np.asarray(made.indptr, np.int64), np.asarray(old_mentions.indptr, np.int64)
    made_at = np.full(n, -1, dtype=np.int64)
    made_at[made_rows] = np.arange(len(made_rows))
    copied = source >= 0
    lengths = np.zeros(n, dtype=np.int64)
    lengths[copied] = old_ptr[source[copied] + 1] - old_ptr[source[copied]]
    lengths[made_rows] = np.diff(made_ptr)
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=np.int64 if max(nnz, n) > np.iinfo(np.int32).max else np.int32)
    data = np.empty(nnz, dtype=np.float32)
    for start, stop in runs(indptr, BLOCK):
        block = np.arange(start, stop)
        for rows, starts, columns, values, renumber in (
                (block[copied[start:stop]], old_ptr[source[start:stop][copied[start:stop]]], old_mentions.indices,
                 old_mentions.data, to_new),
                (block[~copied[start:stop]], made_ptr[made_at[start:stop][~copied[start:stop]]], made.indices,
                 made.data, None)):
            count = lengths[rows]
            offset = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
            to, frm = np.repeat(indptr[rows], count) + offset, np.repeat(starts, count) + offset
            cols = columns[frm]
            indices[to] = renumber[cols] if renumber is not None else cols
            data[to] = values[frm]
    return sparse.csr_matrix((data, indices, indptr), shape=(n, n))
