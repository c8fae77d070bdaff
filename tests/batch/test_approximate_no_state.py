"""Over an approximate vector index (IVF, above store.ann.FLAT_MAX articles) the dense pools are not exact tops, so
no night can follow them: the batch ranks every list every night and keeps no lists state (whose pool records
would cost about 17 KB a list), with the lists a full ranking with the state's fresh statistics gives."""

import numpy as np
import pytest
from listcheck import assert_same_lists, outputs, write_records
from test_learned_incremental import LEARNED, N, _records

from recommender.batch import build, relatedlists
from recommender.batch.incremental import STATE_FILE, compute_links
from recommender.batch.nightly import NO_STATE_APPROXIMATE, run_batch
from recommender.rank.index import Index
from recommender.rank.policy import Policy
from recommender.store import ann as annmodule


@pytest.mark.parametrize("policy", [Policy().with_links(k=5, min_score=None), LEARNED.with_links(k=5, min_score=None)])
def test_an_approximate_index_ranks_every_list_and_keeps_no_state(tmp_path, monkeypatch, policy):
    monkeypatch.setattr(build, "build_for_size", lambda vectors: annmodule.build_for_size(vectors, flat_max=10))
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records = _records(N)
    write_records(feed, records)
    used = []  # what the batch made its job with: the full-precision vectors (the index holds 8-bit codes), ...
    job_for_index = relatedlists.job_for_index
    monkeypatch.setattr(relatedlists, "job_for_index", lambda index, *a, **k: used.append((a, k)) or
                        job_for_index(index, *a, **k))
    for night in range(2):
        if night:
            records[7]["text"] += " thread lock queue"
            write_records(feed, records)
        record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
        assert record.lists == {"kind": "full", "recomputed": N, "reasons": {NO_STATE_APPROXIMATE: N},
                                "fresh_statistics": True}
        assert not (out / STATE_FILE).exists()
    with Index.open(index_dir) as index:  # the lists as the incremental path's first (full) run ranks them
        assert index.data.approximate
        ids = index.data.store.ids()
        args, kwargs = used[-1]
        job = job_for_index(index, *args, **kwargs)
        assert job.ann is not None
        links, plan, _ = compute_links(job, ids, ids, tmp_path / "none.npz", "key", [])
        assert plan.kind == "full"
    expected = {ids[i]: [(ids[x.row], x.score, x.pinned) for x in chosen] for i, chosen in enumerate(links)}
    assert_same_lists(outputs(out), expected)
