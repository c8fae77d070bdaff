"""What a minimum link score costs and what it cuts: for each threshold, recall@k on the curated gold, the share of
lists it shortens and the links it drops, on the ranking `related` uses (the policy's, min_score unset).

    python scripts/measure_min_score.py --index IDX [--gold GOLD.jsonl] [--sample 2000] [--k 10] [--probe ID ...]

With no --gold, the index's own curated related: lists are the gold. Prints one table row per threshold: recall@k,
its ratio to no minimum, precision, lists shortened, lists emptied, and the share of links removed (over every
query with gold, or with --all-links over every article of the index: what a site would lose). --probe ID
prints the links an article keeps at each threshold (an off-topic article should keep few or none). Every kind
of link target is ranked ([links] targets opened), as `evaluate` does.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import Index  # noqa: E402
from recommender.rank.policy import TARGETS, Links, Policy  # noqa: E402

THRESHOLDS = (None, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def read_gold(path: Path | None, index: Index) -> dict[str, list[str]]:
    if path is None:
        return index.store.curated()
    gold = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            gold[record["id"]] = [r if isinstance(r, str) else r["id"] for r in record["related"]]
    return gold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--gold", type=Path, default=None)
    parser.add_argument("--sample", type=int, default=0, help="queries sampled (seed 0); 0 = all")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--probe", action="append", default=[], help="an article id whose links to show")
    parser.add_argument("--all-links", action="store_true", help="links removed over every article, not only "
                        "the queries with gold")
    args = parser.parse_args()
    # no minimum: each threshold is applied below
    policy = Policy(links=Links(k=args.k, min_score=None, targets=TARGETS))
    with Index.open(args.index) as index:
        gold = {q: [g for g in rel if index.has(g)] for q, rel in read_gold(args.gold, index).items()
                if index.has(q)}
        gold = {q: rel for q, rel in gold.items() if rel}
        queries = sorted(gold)
        if args.sample and len(queries) > args.sample:
            queries = sorted(random.Random(0).sample(queries, args.sample))
        started = time.perf_counter()
        lists = []
        for query in queries:
            hits = index.related(query, policy=policy)
            lists.append(([h.id in set(gold[query]) for h in hits], np.array([h.score for h in hits]), len(gold[query])))
        seconds = time.perf_counter() - started
        every = [np.array([h.score for h in index.related(q, policy=policy)]) for q in index.store.ids()] \
            if args.all_links else None
        probes = {p: [(h.score, h.title) for h in index.related(p, policy=policy)] for p in args.probe}
    print(f"{args.index}: {len(queries)} queries with gold, k={args.k}, ranking {index_ranking(args.index)}, "
          f"{seconds:.1f} s")
    all_scores = np.concatenate([s for _, s, _ in lists]) if lists else np.array([])
    print("score quantiles of shown links: " + ", ".join(f"p{q} {np.percentile(all_scores, q):.2f}"
                                                       for q in (5, 25, 50, 75, 95)))
    print(f"{'min_score':>9}  {'recall@k':>8}  {'vs none':>7}  {'precision':>9}  {'lists shortened':>15}  "
          f"{'empty':>6}  {'links removed':>13}" + ("  removed (all)" if every is not None else ""))
    base = None
    for t in THRESHOLDS:
        hit = total_gold = shown = short = empty = 0
        for flags, scores, n_gold in lists:
            keep = np.ones(len(scores), bool) if t is None else scores >= t
            hit += int(np.sum(np.array(flags, bool) & keep))
            total_gold += min(n_gold, args.k)
            shown += int(keep.sum())
            short += int(keep.sum() < args.k)
            empty += int(keep.sum() == 0)
        recall = hit / total_gold if total_gold else 0.0
        base = recall if base is None else base
        print(f"{'none' if t is None else t:>9}  {recall:8.3f}  {recall / base if base else 0:7.3f}  "
              f"{hit / shown if shown else 0:9.3f}  {short / len(lists):15.1%}  {empty / len(lists):6.1%}  "
              f"{1 - shown / max(sum(len(s) for _, s, _ in lists), 1):13.1%}" + (
                  "" if every is None else f"  {removed(every, t):14.1%}"))
    for probe, links in probes.items():
        print(f"{probe}: " + ", ".join(f"{s:.2f} {title[:40]!r}" for s, title in links))
        print("  links kept: " + ", ".join(f"{'none' if t is None else t}: "
                                          f"{sum(1 for s, _ in links if t is None or s >= t)}" for t in THRESHOLDS))


def removed(scores: list[np.ndarray], t: float | None) -> float:
    total = sum(len(s) for s in scores)
    return 0.0 if t is None or not total else sum(int((s < t).sum()) for s in scores) / total


def index_ranking(folder: Path) -> str:
    with Index.open(folder) as index:
        return "learned" if index.learned_model(Policy()) is not None else "default"


if __name__ == "__main__":
    main()
