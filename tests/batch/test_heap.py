"""The batch keeps its long-lived objects out of full garbage collections while it runs (common.heap), and hands
them back when it ends: nothing stays frozen, garbage cycles are collected after, a caller's frozen objects are
left alone."""

import gc
import weakref

import pytest

from recommender.batch.nightly import BatchError, run_batch
from recommender.common.heap import batch_heap, keep_alive


class Node:
    pass


@pytest.fixture(autouse=True)
def nothing_frozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_keep_alive_freezes_only_inside_and_everything_is_handed_back():
    keep_alive()
    assert gc.get_freeze_count() == 0  # outside a batch: nothing
    with batch_heap():
        a, b = Node(), Node()
        a.other, b.other = b, a  # a reference cycle, alive when frozen
        gone = weakref.ref(a)
        keep_alive()
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert gone() is not None  # frozen: a full collection does not walk it
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None  # handed back, then collected


def test_a_callers_frozen_objects_are_left_as_they_are():
    gc.freeze()
    before = gc.get_freeze_count()
    assert before > 0
    with batch_heap():
        Node()
        keep_alive()
        assert gc.get_freeze_count() == before
    assert gc.get_freeze_count() == before


def test_a_batch_freezes_while_it_runs_and_leaves_nothing_frozen(tmp_path, corpus_dir, monkeypatch):
    import recommender.batch.relatedlists as relatedlists

    seen = []
    original = relatedlists.items_from_links

    def items_from_links(*args):  # the batch's output records are made from its lists
        seen.append(gc.get_freeze_count())
        return original(*args)

    monkeypatch.setattr(relatedlists, "items_from_links", items_from_links)
    record = run_batch(corpus_dir, tmp_path / "index", tmp_path / "out", model="hashing", progress=False)
    assert record.status == "ok" and seen and seen[0] > 0  # frozen while it ran
    assert gc.get_freeze_count() == 0
    with pytest.raises(BatchError):  # a failed run too
        run_batch(tmp_path / "missing", tmp_path / "index", tmp_path / "out", model="hashing", progress=False)
    assert gc.get_freeze_count() == 0
