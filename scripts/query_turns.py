"""A query by id, two codes taking turns on one index: warm queries in process (CPU ms, median) and cold ones in
fresh processes (CPU s, median; scripts/bench_query.run_once), with every list compared (ids, scores and each
link's parts, exactly).

    python scripts/query_turns.py --index IDX --codes BEFORE_TREE AFTER_TREE --ranking default|learned \
        [--queries 200] [--rounds 2] [--cold 7] [--rows bench|random] [--dumps DIR]

Warm: a child process per code and round (PYTHONPATH the code's tree) opens the index, answers one query (not
counted), then `related_answer(id, k=10, stored=False)` for each query id, the CPU time of each; the queries are
bench_scale's sample rows (`bench`: a seeded sample of the first 10,000 rows) or a seeded sample of every row
(`random`). Cold: `recommender related ID --index IDX --json -q --compute --policy F` for the first of those
query ids, after one warm-up per code. `default` is `[ranking] learned = "off"`, `learned` the policy's default ("auto").
Set OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (the children inherit it) and compare the CPU figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICY = {"default": '[ranking]\nlearned = "off"\n', "learned": ""}


def query_rows(n: int, count: int, kind: str):
    import numpy as np

    if kind == "bench":  # bench_scale's sample rows (the first is its warm-up, the second its cold id)
        return np.sort(np.random.default_rng([0, 5]).permutation(min(10_000, n))[:count + 1])
    return np.sort(np.random.default_rng([7, n]).permutation(n)[:count + 1])


def child(args) -> None:
    """Warm queries with the code on sys.path: one JSON line (CPU ms median, each list)."""
    from dataclasses import replace

    from recommender import Index
    from recommender.rank.policy import Policy

    policy = Policy()
    if args.ranking == "default":
        policy = replace(policy, ranking=replace(policy.ranking, learned="off"))
    with Index.open(args.index) as index:
        rows = query_rows(len(index), args.queries, args.rows)
        ids = [index.data.store.by_rows([int(r)])[int(r)].id for r in rows]
        index.related_answer(ids[0], k=10, policy=policy, stored=False)
        cpus, lists = [], {}
        for article in ids[1:]:
            cpu = time.process_time()
            related, _ = index.related_answer(article, k=10, policy=policy, stored=False)
            cpus.append(time.process_time() - cpu)
            lists[article] = [[r.id, r.score, r.parts] for r in related]
    print(json.dumps({"warm_cpu_ms": round(1000 * statistics.median(cpus), 2), "lists": lists}))


def warm(code: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--index", str(args.index), "--ranking",
               args.ranking, "--queries", str(args.queries), "--rows", args.rows]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(code), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--codes", type=Path, nargs=2, help="two source trees (worktrees) to compare")
    parser.add_argument("--ranking", choices=sorted(POLICY), default="default")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cold", type=int, default=7)
    parser.add_argument("--rows", choices=("bench", "random"), default="bench")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.index = args.index.resolve()
    if args.child:
        return child(args)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_query import run_once

    codes = [c.resolve() for c in args.codes]
    first = None
    for round_ in range(1, args.rounds + 1):
        for code in codes:
            result = warm(code, args)
            first = first or result["lists"]
            lists = result["lists"]
            same = sum(lists[q] == first[q] for q in first)
            ids = sum([x[0] for x in lists[q]] == [x[0] for x in first[q]] for q in first)
            print(f"warm {args.ranking} {code} round {round_}: {result['warm_cpu_ms']} ms CPU (median of "
                  f"{len(lists)}); lists as the first run's: {ids} of {len(first)} by ids, {same} with scores "
                  f"and parts", flush=True)
    if not args.cold:
        return None
    import sqlite3

    db = next(args.index.glob("articles-*.sqlite"))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        n = connection.execute("SELECT max(row) + 1 FROM articles").fetchone()[0]
        article = connection.execute("SELECT id FROM articles WHERE row = ?",
                                     [int(query_rows(n, args.queries, args.rows)[1])]).fetchone()[0]
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(POLICY[args.ranking])
    extra = ["--compute", "--policy", handle.name]
    figures = {code: [] for code in codes}
    answers = {}
    for code in codes:
        run_once(code, args.index, article, extra)  # warm-up: the page cache, __pycache__
    for _ in range(args.cold):
        for code in codes:
            wall, cpu, rss, out = run_once(code, args.index, article, extra)
            figures[code].append((cpu, rss))
            answers[code] = json.dumps(out["related"])
    os.unlink(handle.name)
    for code, runs in figures.items():
        print(f"cold {args.ranking} {code}: {statistics.median(c for c, _ in runs):.3f} s CPU (median of {len(runs)}: "
              f"{', '.join(f'{c:.3f}' for c, _ in runs)}), peak RSS {statistics.median(r for _, r in runs):.0f} MB")
    print(f"cold answers identical: {len(set(answers.values())) == 1} ({article})")
    return None


if __name__ == "__main__":
    main()
