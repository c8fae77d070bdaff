"""What the incremental-list tests share: the synthetic articles' topics, their outputs, a full recomputation
with the frozen statistics an incremental run used, and the comparison (same ids in the same order, the same
pinned flags, scores within TOLERANCE: float32 z-mixes, and the outputs round scores to 6 decimals)."""

import json

import numpy as np

from recommender.batch.incremental import STATE_FILE, Frozen, load_state
from recommender.batch.relatedlists import LinkJob, link_rows
from recommender.rank.index import Index
from recommender.rank.learned import graph_facts, load_model

TOLERANCE = 1e-5
TOPICS = [("asyncio event loop coroutine task future await schedule callback").split(),
          ("json parser decoder encoder schema string number object array").split(),
          ("http server client request response cookie header status redirect").split(),
          ("thread lock queue pool process signal semaphore barrier worker").split(),
          ("file path directory stat glob rename remove permission symlink").split()]


def write_records(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")


def outputs(out):
    """related.jsonl as {id: [(related id, score, pinned), ...]}."""
    lines = [json.loads(x) for x in (out / "related.jsonl").read_text().splitlines()]
    return {x["id"]: [(r["id"], r["score"], bool(r.get("pinned"))) for r in x["related"]] for x in lines}


def full_with_frozen(index_dir, out, policy, learned: bool = False, window_pools: dict | None = None,
                     window_ann: bool = False):
    """Every list ranked again from scratch with the frozen statistics the incremental run used (and, with
    `learned`, the stored learned model and graph facts made with those statistics). `window_pools`: filled with
    each list's window pool (rows, sorted) as that ranking retrieved it. window_ann: window candidates from the
    stored approximate window index, as the batch takes them (else an exact search)."""
    state = load_state(out / STATE_FILE)
    with Index.open(index_dir) as index:
        ids = index.data.store.ids()
        assert ids == state["ids"]
        vectors = np.ascontiguousarray(index.data.vectors.vectors(), dtype=np.float32)
        frozen = Frozen.stored(state, ids)
        if learned:
            model = load_model(index.data.folder)
            ranking = dict(learned=model, site_facts=index.data.article_features(),
                           graph=graph_facts(vectors, index.data.lexical, model, ids,
                                             moments=(state["mean"], state["second"])))
        else:
            ranking = dict(site_facts=index.data.article_features() if index.data.tagged() else None)
        job = LinkJob(vectors=vectors, lexical=index.data.lexical, policy=policy, facts=index.data.rule_columns(),
                      overrides=index.data.overrides(), frozen=frozen, windows=index.data.window_scores(),
                      window_ann=index.data.window_ann(approximate_only=True) if window_ann else None, **ranking)
        links = link_rows(job, np.arange(len(ids)))
        if window_pools is not None:
            window_pools.update({ids[r]: sorted(pool[0].tolist()) for r, pool in frozen.windows.pools.items()})
        return {ids[i]: [(ids[link.row], None if np.isnan(link.score) else link.score, link.pinned)
                         for link in chosen] for i, chosen in enumerate(links)}


def stored_window_pools(out) -> dict:
    """Each list's window pool (rows, sorted) as the lists state of the last run keeps it."""
    from recommender.batch.window_record import Record

    state = load_state(out / STATE_FILE)
    n = len(state["ids"])
    record = Record.load(state, np.arange(n), np.ones(n, dtype=bool))
    return {state["ids"][r]: sorted(pool[0].tolist()) for r, pool in record.pools.items()}


def assert_same_lists(got, expected):
    assert got.keys() == expected.keys()
    for article, links in expected.items():
        mine = got[article]
        assert [x[0] for x in mine] == [x[0] for x in links], article
        assert [x[2] for x in mine] == [x[2] for x in links], article
        for (_, a, _), (_, b, _) in zip(mine, links):
            assert (a is None and b is None) or abs(a - b) <= TOLERANCE, article


def variant(record, rng, extra):
    """The record's text with about a fifth of its words dropped and 4 words of `extra` added."""
    words = record["text"].split()
    return " ".join([w for w in words if rng.random() < 0.8] + list(rng.choice(extra, 4)))


HUBS = (1, 2, 4)  # rows made hubs by `with_hubs`


def with_hubs(records, rng):
    """Some articles made hubs that most others name, each naming 20 others back, so the hubs' mention rows are
    longer than a small candidate pool and their entries' weights differ (a rare name weighs more; a pair naming
    each other adds both): the mention pool is then the entries above a cut (rank.candidates.mention_pool)."""
    for k, h in enumerate(HUBS):
        records[h]["title"] = f"Hub{k} handbook"
    for i, record in enumerate(records):
        if i in HUBS:
            others = rng.choice([j for j in range(len(records)) if j not in HUBS], 20, replace=False)
            record["text"] += " " + " ".join(f"see {records[j]['title']}." for j in others)
        else:
            record["text"] += "".join(f" the hub{k} handbook" for k in range(len(HUBS)) if rng.random() < 0.6)
    return records


def churn_hubs(records, rng):
    """A night's hub change: 3 articles a hub names start naming it back, so their entries in its mention row rise
    above others and the row's cut rises: unchanged entries leave the hub's mention pool."""
    hubs = [r for r in records if r["title"].startswith("Hub") and r["title"].endswith(" handbook")]
    hub = hubs[int(rng.integers(len(hubs)))]  # one still there (a night may have removed one)
    name = hub["title"].lower()
    named = [r for r in records if f"see {r['title']}." in hub["text"] and name not in r["text"]
             and not r["title"].startswith("Hub")]
    for j in rng.choice(len(named), min(3, len(named)), replace=False):
        named[j]["text"] += f" the {name}"
