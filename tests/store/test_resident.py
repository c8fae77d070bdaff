"""Mapped arrays held in memory by a process that ranks many lists (store.resident): copies only of mapped arrays,
only within the budget, the bytes given back when a copy is let go, and a link job's lists the same held or mapped."""

import gc

import numpy as np
import pytest

from recommender.store import resident


@pytest.fixture
def holding():
    resident.stop_holding()
    yield resident
    resident.stop_holding()


def mapped_array(tmp_path, values, name="a.npy"):
    np.save(tmp_path / name, values)
    return np.asarray(np.load(tmp_path / name, mmap_mode="r"))


def test_only_mapped_arrays_are_copied_within_the_budget_and_given_back(tmp_path, holding):
    values = np.arange(1000, dtype=np.int32)
    mapped = mapped_array(tmp_path, values)
    assert resident.is_mapped(mapped) and resident.is_mapped(mapped[10:20]) and not resident.is_mapped(values)
    assert resident.held(mapped) is mapped  # not asked to hold: as it is
    assert holding.hold_in_memory(6000) == 6000
    assert resident.held(values) is values  # already in memory
    copy = resident.held(mapped)
    assert copy is not mapped and not resident.is_mapped(copy) and np.array_equal(copy, values)
    assert not copy.flags.writeable
    assert holding.hold_in_memory() == 2000  # a later call adds nothing
    other = mapped_array(tmp_path, np.arange(1000, dtype=np.int32) * 2, "b.npy")
    assert resident.held(other) is other  # 4,000 bytes over the 2,000 left: stays mapped
    small = resident.held(other[:500])
    assert not resident.is_mapped(small) and np.array_equal(small, np.arange(500) * 2)
    assert holding.hold_in_memory() == 0
    del copy, small
    gc.collect()
    assert holding.hold_in_memory() == 6000  # the copies let go: their bytes back
    kept = resident.held(mapped)
    holding.stop_holding()
    assert holding.hold_in_memory(1000) == 1000
    del kept
    gc.collect()
    assert holding.hold_in_memory() == 1000  # a copy of an earlier budget gives nothing to this one


def test_a_link_job_holds_what_every_list_reads_and_gives_the_mapped_lists(hashing_index, holding, monkeypatch):
    from recommender.batch.relatedlists import job_for_index, link_rows
    from recommender.rank import windows as windows_module
    from recommender.rank.index import Index
    from recommender.rank.policy import Policy

    def lists(budget):
        holding.stop_holding()
        monkeypatch.setattr(resident, "default_budget", lambda: budget)
        monkeypatch.setattr(windows_module, "COPY_LIMIT", 0)  # no float copy of the codes: the codes held
        with Index.open(hashing_index) as index:
            vectors = np.ascontiguousarray(index.data.vectors.vectors(), dtype=np.float32)
            job = job_for_index(index, vectors, Policy())
            links = link_rows(job, np.arange(job.count))
            stage = job.ranker().lexical_stage()
            arrays = [*stage.tfidf[1:], *stage._arrays["postings"][1:], job.windows.codes, job.windows.scales, job.facts.sources]
            return [[(link.row, link.score) for link in chosen] for chosen in links], arrays

    mapped_lists, mapped = lists(0)
    held_lists, held = lists(1 << 30)
    assert all(resident.is_mapped(a) for a in mapped)
    assert not any(resident.is_mapped(a) for a in held)
    assert held_lists == mapped_lists and any(held_lists)
