"""The copy graph without an all-pairs product (recommender.batch.copy_reach.CopyFinder, CopyRecord): each
article's copies read from its dense candidate pool give exactly the graph every row against every vector gives,
also where the pool cannot hold them all (more copies than the pool's depth: the article's full row) or its title
copies (a pool whose weakest member is above the title cosine: the title's group); a full run reads it from the
lists it ranks, a night from the changed articles' searches, and the nights stay equal to a full recomputation."""

import logging
import re

import numpy as np
from listcheck import assert_same_lists, full_with_frozen, outputs, write_records

from recommender.batch.copy_reach import CopyFinder
from recommender.batch.incremental import STATE_FILE, load_state
from recommender.batch.nightly import run_batch
from recommender.batch.window_reach import EPS
from recommender.rank.index import Index
from recommender.rank.linking import TITLE_COPY_COSINE
from recommender.rank.policy import Policy

T = 0.98


def all_pairs(vectors, codes, threshold=T, names=None) -> set:
    """The reference: every pair's cosine (two API pages of different names: never a pair)."""
    sims = vectors @ vectors.T
    same = (codes[:, None] == codes[None, :]) & (codes[:, None] >= 0)
    near = (sims >= threshold - EPS) | (same & (sims >= min(threshold, TITLE_COPY_COSINE) - EPS))
    if names is not None:
        near &= ~((names[:, None] >= 0) & (names[None, :] >= 0) & (names[:, None] != names[None, :]))
    a, b = np.nonzero(np.triu(near, 1))
    return set(zip(a.tolist(), b.tolist()))


def as_pairs(a, b) -> set:
    return {(min(x, y), max(x, y)) for x, y in zip(np.asarray(a).tolist(), np.asarray(b).tolist())}


def unit(rows):
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def near(rng, base, cosine, count):
    """`count` unit vectors at about `cosine` to `base`."""
    noise = unit(rng.normal(size=(count, len(base))))
    noise -= (noise @ base)[:, None] * base[None, :]
    noise = unit(noise)
    return unit(cosine * base[None, :] + np.sqrt(1 - cosine ** 2) * noise)


def test_copies_from_each_pool_give_the_all_pairs_graph():
    rng = np.random.default_rng(3)
    d = 24
    spread = unit(rng.normal(size=(200, d)))
    crowd = near(rng, spread[0], 0.999, 12)  # 12 copies of one vector: more than a pool of 6 holds
    hub = spread[1]
    variants = near(rng, hub, 0.95, 6)  # the hub's pool is full of these, above the title cosine
    title_copy = near(rng, hub, 0.86, 1)[0]  # the hub's title, a copy by title only, outside its pool
    its_own = near(rng, title_copy, 0.97, 6)  # ... and the hub outside the title copy's pool too
    vectors = np.concatenate([spread, crowd, variants, title_copy[None, :], its_own])
    codes = np.full(len(vectors), -1, dtype=np.int64)
    codes[1] = codes[200 + 12 + 6] = 7  # hub and title copy
    codes[[5, 6]] = 8  # one title, no copy (cosine of random vectors)
    expected = all_pairs(vectors, codes)
    assert (1, 218) in expected and len([e for e in expected if e[0] >= 200]) >= 66

    def search(queries, depth):  # an exact dense pool, as the ranker's
        return np.argpartition(-(queries @ vectors.T), depth - 1, axis=1)[:, :depth]

    finder = CopyFinder(vectors, codes, T, search, depth=6)
    assert as_pairs(*finder.edges_of(np.arange(len(vectors)))) == expected
    assert finder.full_rows >= 12 and finder.group_rows >= 1  # both cases arose
    finder = CopyFinder(vectors, codes, T, search, depth=len(vectors))  # one pool holds everything
    assert as_pairs(*finder.edges_of(np.arange(len(vectors)))) == expected
    assert finder.full_rows == finder.group_rows == 0
    names = np.full(len(vectors), -1, dtype=np.int64)
    names[[200, 201, 202]] = [0, 1, 0]  # two API names (aliases of one text) and the first's page at two URLs
    finder = CopyFinder(vectors, codes, T, search, depth=6, names=names)
    named = as_pairs(*finder.edges_of(np.arange(len(vectors))))
    assert named == all_pairs(vectors, codes, names=names) == expected - {(200, 201), (201, 202)}


def _records(rng, vocabulary):
    """100 articles of random words; a crowd of 8 copies of one text (more than a pool of 5 + 1 holds), dated
    and undated; a hub with 6 variants (cosine 0.92-0.95: its pool full above the title cosine, below the
    threshold), and a title copy of the hub (about 0.83) with its own 6 such variants (the hub outside its pool
    too)."""
    out = []
    for i in range(100):
        out.append({"id": f"doc/{i}", "title": f"Note {i}", "text": " ".join(rng.choice(vocabulary, 40)),
                    "published": f"2024-03-{1 + i % 28:02d}"})
    crowd = " ".join(rng.choice(vocabulary, 60))
    for c in range(8):
        out.append({"id": f"crowd/{c}", "title": f"Crowd {c}", "text": crowd,
                    **({"published": f"2024-04-{1 + c:02d}"} if c % 2 else {})})
    hub = list(rng.choice(vocabulary, 80))
    out.append({"id": "hub", "title": "The one story told twice", "text": " ".join(hub), "published": "2024-02-01"})
    for v in range(6):
        out.append({"id": f"variant/{v}", "title": f"Variant {v}", "text": " ".join(hub[:80 - 8 - v])})
    told = hub[:64] + list(rng.choice(vocabulary, 10))
    out.append({"id": "told", "title": "The one story told twice", "text": " ".join(told),
                "published": "2024-02-02"})
    for v in range(6):
        out.append({"id": f"retold/{v}", "title": f"Retold {v}", "text": " ".join(told[:74 - 8 - v])})
    alias = " ".join(rng.choice(vocabulary, 60))  # API pages: two names of one text, one of them at two URLs
    for page in ("api/pkg.alpha.html", "api/pkg.beta.html", "mirror/pkg.alpha.html"):
        out.append({"id": page, "title": page, "text": alias})
    return out


def stored_graph(index_dir, out):
    """The lists state's copy graph (as id pairs) and the all-pairs graph of the index's vectors."""
    state = load_state(out / STATE_FILE)
    with Index.open(index_dir) as index:
        vectors = np.ascontiguousarray(index.data.vectors.vectors(), dtype=np.float32)
        codes, names = index.data.rule_columns().title_codes, index.data.rule_columns().api_names
        ids = index.data.store.ids()
    name = lambda pairs: {tuple(sorted((ids[a], ids[b]))) for a, b in pairs}  # noqa: E731
    return name(as_pairs(state["copy_a"], state["copy_b"])), name(all_pairs(vectors, codes, names=names))


def test_full_run_and_nights_keep_the_all_pairs_graph_with_small_pools(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="recommender.batch.copy_reach")
    rng = np.random.default_rng(11)
    vocabulary = [f"w{i}" for i in range(400)]
    feed, index_dir, out = tmp_path / "feed.jsonl", tmp_path / "index", tmp_path / "out"
    records = _records(rng, vocabulary)
    write_records(feed, records)
    policy = Policy().with_links(k=5, min_score=None).with_section("ranking", candidates=5) \
        .with_section("batch", refit_drift=0.3)
    assert run_batch(feed, index_dir, out, policy, model="hashing", progress=False).lists["kind"] == "full"
    graph, expected = stored_graph(index_dir, out)
    assert ("hub", "told") in expected and ("crowd/0", "crowd/7") in expected
    assert ("api/pkg.alpha.html", "mirror/pkg.alpha.html") in expected
    assert ("api/pkg.alpha.html", "api/pkg.beta.html") not in expected
    assert graph == expected
    assert re.search(r"copy graph: \d+ pairs from 125 lists' candidates .* \(0 rows searched, [1-9]\d* read their "
                     r"title group, [1-9]\d* against every vector", caplog.text), caplog.text
    by_id = {r["id"]: r for r in records}
    by_id["crowd/3"]["text"] = " ".join(rng.choice(vocabulary, 60))  # a copy leaves the crowd
    by_id["retold/2"]["text"] += " w1 w2"
    records.append({"id": "early", "title": "The one story told twice", "text": " ".join(
        by_id["hub"]["text"].split()[:70]), "published": "2023-01-01"})  # an earlier published title copy
    records.append(dict(by_id["crowd/0"], id="crowd/new", title="Crowd new"))  # one more copy, undated
    by_id["api/pkg.beta.html"]["text"] += " w1"  # an alias changes: still no copy of the other name
    write_records(feed, records)
    record = run_batch(feed, index_dir, out, policy, model="hashing", progress=False)
    assert record.lists["kind"] == "incremental", record.lists
    assert record.lists["recomputed"] < len(records)
    graph, expected = stored_graph(index_dir, out)
    assert ("crowd/7", "crowd/new") in expected and ("early", "hub") in expected
    assert graph == expected
    assert re.search(r"of 5 new or changed articles \([1-9]\d* read their title group, [1-9]\d* against every",
                     caplog.text), caplog.text
    assert_same_lists(outputs(out), full_with_frozen(index_dir, out, policy))
