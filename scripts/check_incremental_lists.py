"""Check a batch's output against every list ranked again with the statistics its lists state froze: the same
ids in the same order, and the largest score difference (issue 15; under the default or a learned ranking).

    python scripts/check_incremental_lists.py --index DIR --out DIR [--policy FILE]

Exits 1 when a list differs in ids or order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from recommender.batch.incremental import STATE_FILE, Frozen, load_state
from recommender.batch.nightly import resolve_policy
from recommender.batch.relatedlists import job_for_index, link_rows
from recommender.rank.index import Index
from recommender.rank.learned import graph_facts, load_model


def recomputed(index_dir: Path, out: Path, policy) -> dict[str, list[tuple[str, float | None]]]:
    state = load_state(out / STATE_FILE)
    if state is None:
        sys.exit(f"{out / STATE_FILE}: no lists state to check against")
    with Index.open(index_dir) as index:
        ids = index.data.store.ids()
        if ids != state["ids"]:
            sys.exit(f"{out / STATE_FILE}: made for other articles than {index_dir}")
        vectors = np.ascontiguousarray(index.data.vectors.vectors(), dtype=np.float32)
        frozen = Frozen.stored(state, ids)
        model = index.learned_model(policy)
        if model is not None:  # read from the index's arrays it has no curated lists: the graph needs them
            model = load_model(index.data.folder)
        job = job_for_index(index, vectors, policy, frozen=frozen, learned=model,
                            graph=graph_facts(vectors, index.data.lexical, model, ids,
                                              moments=(state["mean"], state["second"])) if model is not None else None)
        links = link_rows(job, np.arange(len(ids)))
    return {ids[i]: [(ids[link.row], None if np.isnan(link.score) else link.score) for link in chosen]
            for i, chosen in enumerate(links)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--policy", type=Path, help="the batch's policy file (default: ./recommender.toml or none)")
    args = parser.parse_args()
    expected = recomputed(args.index, args.out, resolve_policy(args.policy))
    lines = (args.out / "related.jsonl").read_text(encoding="utf-8").splitlines()
    got = {x["id"]: [(r["id"], r["score"]) for r in x["related"]] for x in map(json.loads, lines)}
    differ = [k for k in expected if [x[0] for x in got.get(k, [])] != [x[0] for x in expected[k]]]
    worst = max((abs(a[1] - b[1]) for k in expected for a, b in zip(got.get(k, []), expected[k])
                 if a[1] is not None and b[1] is not None), default=0.0)
    print(f"{len(expected)} lists; {len(differ)} differ in ids or order; largest score difference {worst:.1e}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
