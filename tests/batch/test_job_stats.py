"""The batch's job under a learned ranking: every article's cosine statistics made once at its start
(relatedlists.fill_dense_stats), the numbers each list's candidates would get, and the lists the same."""

import numpy as np

from recommender.batch.relatedlists import job_for_index, link_rows
from recommender.rank.index import Index
from recommender.rank.learned import ALL_SIGNALS, LearnedModel, graph_facts
from recommender.rank.policy import Policy


def test_the_learned_batch_job_has_every_articles_cosine_statistics(hashing_index):
    with Index.open(hashing_index) as index:
        ids = index.data.store.ids()
        n = len(ids)
        vectors = np.ascontiguousarray(index.data.vectors.vectors(), dtype=np.float32)
        lists = {ids[i]: [ids[(i + 1) % n], ids[(i + 2) % n]] for i in range(0, n, 3)}
        size = len(ALL_SIGNALS)
        model = LearnedModel(signals=list(ALL_SIGNALS), mean=[0.0] * size, scale=[1.0] * size,
                             coef=list(np.linspace(-1, 1, size)), intercept=0.0, lists=lists)
        job = job_for_index(index, vectors, Policy(), learned=model)
        assert job.graph is not None and not np.isnan(job.graph.dense_stats).any()
        # each list's candidates' statistics computed as they come: the same up to float32 rounding
        fresh = graph_facts(vectors, index.data.lexical, model, ids)
        assert np.isnan(fresh.dense_stats).all()
        for rows in np.array_split(np.random.default_rng(0).permutation(n), 8):  # a few rows at a time
            assert np.allclose(fresh.dense_stats_of(rows), job.graph.dense_stats[rows], rtol=1e-5, atol=1e-6)
        rows = np.arange(n)
        filled = link_rows(job, rows)
        job.graph, job._ranker = fresh, None
        fresh.dense_stats[:] = np.nan
        as_they_come = link_rows(job, rows)
        assert [[link.row for link in chosen] for chosen in filled] == \
            [[link.row for link in chosen] for chosen in as_they_come]
