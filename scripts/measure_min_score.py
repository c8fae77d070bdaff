"""What a minimum link score costs and what it cuts: for each threshold, recall@k on the curated gold, the share of
lists it shortens and the links it drops, on the ranking `related` uses (the policy's, min_score unset).

    python scripts/measure_min_score.py --index IDX [--gold GOLD.jsonl] [--sample 2000] [--k 10] [--all-links]
        [--probe ID ...]

With no --gold, the index's own curated related: lists are the gold. Prints one table row per rule (RULES: a
minimum score, and a minimum reverse z-score, [links] min_reverse): recall@k, its difference to the rule
`min_score 0` alone (the default before min_reverse), precision, lists shortened, lists emptied, and the share of
links removed (over the queries with gold, and with --all-links over every article of the index: what a site
would lose), and for each --probe ID the links that article keeps (an off-topic article should keep few or
none). Every kind of link target is ranked ([links] targets opened), as `evaluate` does.
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

# the rules measured: (name, min_score, min_reverse); None = not applied
RULES = [("none", None, None), ("min_score 0", 0.0, None), ("min_score 0.5", 0.5, None),
         ("min_score 1.0", 1.0, None), ("min_score 1.5", 1.5, None),
         ("min_score 0, reverse -0.5", 0.0, -0.5), ("min_score 0, reverse 0", 0.0, 0.0),
         ("min_score 0, reverse 0.25", 0.0, 0.25), ("min_score 0, reverse 0.5", 0.0, 0.5)]


def read_gold(path: Path | None, index: Index) -> dict[str, list[str]]:
    if path is None:
        return index.data.store.curated()
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
    # no minimum and every kind of target: each rule is applied below
    policy = Policy(links=Links(k=args.k, min_score=None, min_reverse=None, targets=TARGETS))
    with Index.open(args.index) as index:
        gold = {q: [g for g in rel if index.data.has(g)] for q, rel in read_gold(args.gold, index).items()
                if index.data.has(q)}
        gold = {q: rel for q, rel in gold.items() if rel}
        queries = sorted(gold)
        if args.sample and len(queries) > args.sample:
            queries = sorted(random.Random(0).sample(queries, args.sample))
        mean, std = index.ranker(policy).standing().every()
        row_of = {x: r for r, x in enumerate(index.data.store.ids())}

        def links(query: str) -> tuple[list, np.ndarray, np.ndarray]:
            """(hits, scores, reverse z-scores) of a query's whole list under `policy`."""
            hits = index.related(query, policy=policy)
            rows = np.array([row_of[h.id] for h in hits], dtype=np.int64)
            cos = np.array([h.parts["dense"]["value"] for h in hits])
            return hits, np.array([h.score for h in hits]), (cos - mean[rows]) / std[rows] if len(rows) else cos

        started = time.perf_counter()
        lists = []
        for query in queries:
            hits, scores, reverse = links(query)
            lists.append((np.array([h.id in set(gold[query]) for h in hits], bool), scores, reverse,
                          len(gold[query])))
        seconds = time.perf_counter() - started
        every = [links(q)[1:] for q in index.data.store.ids()] if args.all_links else None
        probes = {p: links(p) for p in args.probe}
    print(f"{args.index}: {len(queries)} queries with gold, k={args.k}, ranking {index_ranking(args.index)}, "
          f"{seconds:.1f} s")
    all_scores = np.concatenate([s for _, s, _, _ in lists]) if lists else np.array([])
    print("score quantiles of shown links: " + ", ".join(f"p{q} {np.percentile(all_scores, q):.2f}"
                                                       for q in (5, 25, 50, 75, 95)))
    print(f"{'rule':>26}  {'recall@k':>8}  {'vs min 0':>8}  {'precision':>9}  {'lists shortened':>15}  "
          f"{'empty':>6}  {'links removed':>13}" + ("  removed (all)" if every is not None else "")
          + "".join(f"  probe {n + 1}" for n in range(len(probes))))
    base = None
    for name, low, rev in RULES:
        hit = total_gold = shown = short = empty = 0
        for flags, scores, reverse, n_gold in lists:
            keep = kept(scores, reverse, low, rev)
            hit += int(np.sum(flags & keep))
            total_gold += min(n_gold, args.k)
            shown += int(keep.sum())
            short += int(keep.sum() < args.k)
            empty += int(keep.sum() == 0)
        recall = hit / total_gold if total_gold else 0.0
        base = recall if name == "min_score 0" else base
        listed = sum(len(s) for _, s, _, _ in lists)
        print(f"{name:>26}  {recall:8.3f}  {recall - base if base is not None else 0:+8.3f}  "
              f"{hit / shown if shown else 0:9.3f}  {short / len(lists):15.1%}  {empty / len(lists):6.1%}  "
              f"{1 - shown / max(listed, 1):13.1%}"
              + ("" if every is None else f"  {removed(every, low, rev):14.1%}")
              + "".join(f"  {int(kept(s, r, low, rev).sum()):7}" for _, s, r in probes.values()))
    for n, (probe, (hits, scores, reverse)) in enumerate(probes.items(), start=1):
        print(f"probe {n}: {probe}: " + ", ".join(f"{h.title[:32]!r} {s:.2f} (reverse {r:.2f})"
                                                 for h, s, r in zip(hits, scores, reverse)))


def kept(scores: np.ndarray, reverse: np.ndarray, low: float | None, rev: float | None) -> np.ndarray:
    keep = np.ones(len(scores), bool)
    if low is not None:
        keep &= scores >= low
    if rev is not None:
        keep &= ~(reverse < rev)
    return keep


def removed(every: list, low: float | None, rev: float | None) -> float:
    total = sum(len(s) for s, _ in every)
    return sum(int((~kept(s, r, low, rev)).sum()) for s, r in every) / total if total else 0.0


def index_ranking(folder: Path) -> str:
    with Index.open(folder) as index:
        return "learned" if index.learned_model(Policy()) is not None else "default"


if __name__ == "__main__":
    main()
