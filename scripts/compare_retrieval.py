"""The two-stage ranking against the exact one (every query scored against the whole corpus), on one index and
its gold: recall@10 and MRR of each system (the default ranking and the learned ranking under the same
cross-validation, each protocol) in both modes, their differences, and how often the top-10 lists agree
(overlap@10: the share of a query's top 10 that the other mode also has, averaged over the queries).

    python scripts/compare_retrieval.py --index /tmp/idx/mdn --gold ../shared/corpora/mdn/gold.jsonl [--json OUT]

The issue's target: |difference| <= 0.005 for recall@10 and MRR, overlap@10 >= 0.95. Nothing is written to the
index.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from recommender import Index
from recommender.evaluate.evaluation import evaluate_index
from recommender.evaluate.gold import load_gold_jsonl
from recommender.rank.policy import Policy

METRICS = ("recall@10", "mrr")


def run(index: Index, gold, retrieval: str, learned: bool, seed: int):
    base = Policy()
    policy = replace(base, ranking=replace(base.ranking, retrieval=retrieval))
    start = time.perf_counter()
    result = evaluate_index(index, gold, baselines=(), policy=policy, dense=False, learned=learned, seed=seed)
    return result, time.perf_counter() - start


def overlap(a, b, k: int = 10) -> float:
    tops = {o.query: [i for i, _ in o.top[:k]] for o in b.per_query}
    shares = [len(set(x for x, _ in o.top[:k]) & set(tops[o.query])) / max(1, min(k, len(o.top)))
              for o in a.per_query]
    return sum(shares) / max(1, len(shares))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--gold", required=True)
    parser.add_argument("--no-learned", action="store_true", help="only the default ranking")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    gold = load_gold_jsonl(args.gold)
    rows = []
    with Index.open(args.index) as index:
        exact, exact_s = run(index, gold, "exact", not args.no_learned, args.seed)
    with Index.open(args.index) as index:  # a fresh index: no ranker or cache shared with the exact run
        two, two_s = run(index, gold, "two-stage", not args.no_learned, args.seed)
    print(f"{args.index}: {exact.queries} queries; evaluation took {exact_s:.1f} s exact, {two_s:.1f} s two-stage")
    print(f"{'system':45} {'metric':10} {'exact':>7} {'2-stage':>7} {'diff':>7}  overlap@10")
    for system in exact.systems:
        other = two.system(system.system)
        share = overlap(system, other)
        for m in METRICS:
            a, b = system.overall[m], other.overall[m]
            print(f"{system.system:45} {m:10} {a:7.4f} {b:7.4f} {b - a:+7.4f}  {share:.4f}")
            rows.append({"system": system.system, "metric": m, "exact": a, "two_stage": b, "diff": b - a,
                         "overlap@10": share})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"index": args.index, "gold": args.gold, "queries": exact.queries, "rows": rows,
                       "seconds": {"exact": exact_s, "two_stage": two_s}}, handle, indent=1)


if __name__ == "__main__":
    main()
