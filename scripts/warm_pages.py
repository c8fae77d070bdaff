"""Warm queries by id on a kept index, pass by pass: CPU and page faults a query, and which mapped files the faults
fall in (the pages each file gained in /proc/self/smaps during a pass).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=CODE python scripts/warm_pages.py --index IDX \
        [--ranking default|learned] [--queries 20] [--again 2] [--files 8] [--dump answers.json]

The queries are bench_scale's sample rows (the first is the warm-up; the next `--queries` are timed, as its warm
figure). Passes: `touch` (a first Index: its warm-up query, then each query once; pages not yet mapped, and not
yet in the page cache if the index is cold), `reopen` (a second Index of the same process, as bench_scale's warm
phase after its links phase: its warm-up query, then each query once; the pages are in the page cache but not
mapped by it: a fault each), then `again` passes of the same queries (nothing left to map: the query's own
computing). `--dump` writes each query's links (ids, scores, parts) and a digest of its every candidate's numbers
(rows, score, each part's value and z-score), to compare two codes' answers with `cmp`. Linux only (smaps).
`--numpy`: the lexical heads' top-k in NumPy, as a one-shot query computes it (by default compiled,
store/compiledtopk.py, as the service and bench_scale's process rank: the same numbers).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def mapped_kb() -> dict[str, int]:
    """Resident KB of each mapped file of this process (its name), from /proc/self/smaps."""
    out: dict[str, int] = {}
    name = None
    with open("/proc/self/smaps", encoding="utf-8") as handle:
        for line in handle:
            head = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$", line)
            if head:
                name = Path(head.group(1).strip()).name or "[anonymous]"
            elif line.startswith("Rss:") and name is not None:
                out[name] = out.get(name, 0) + int(line.split()[1])
    return out


def run_pass(index, policy, ids: list[str], name: str, files: int) -> dict:
    before, usage = mapped_kb(), resource.getrusage(resource.RUSAGE_SELF)
    cpus = []
    for article in ids:
        cpu = time.process_time()
        index.related_answer(article, k=10, policy=policy, stored=False)
        cpus.append(time.process_time() - cpu)
    after, done = mapped_kb(), resource.getrusage(resource.RUSAGE_SELF)
    gained = sorted(((kb - before.get(f, 0)) / len(ids), f) for f, kb in after.items())[::-1][:files]
    out = {"pass": name, "cpu_ms_mean": round(1000 * sum(cpus) / len(cpus), 2),
           "cpu_ms_median": round(1000 * statistics.median(cpus), 2),
           "minor_faults": round((done.ru_minflt - usage.ru_minflt) / len(ids)),
           "major_faults": round((done.ru_majflt - usage.ru_majflt) / len(ids), 1),
           "mapped_kb": {f: round(kb) for kb, f in gained if kb > 0}}
    print(f"{name:7s} {out['cpu_ms_mean']:6.2f} ms CPU a query (median {out['cpu_ms_median']:.2f}); "
          f"{out['minor_faults']} minor, {out['major_faults']} major faults a query", file=sys.stderr)
    for f, kb in out["mapped_kb"].items():
        print(f"        {kb:7d} KB a query mapped: {f}", file=sys.stderr)
    return out


def digest(cand) -> str:
    h = hashlib.sha1()
    for arr in [cand.rows, cand.score] + [cand.raw[k] for k in sorted(cand.raw)] + [cand.z[k] for k in sorted(cand.z)]:
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--ranking", choices=("default", "learned"), default="learned")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--again", type=int, default=2)
    parser.add_argument("--files", type=int, default=8, help="the files that gained most pages, per pass")
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--numpy", action="store_true",
                        help="keep the lexical heads in NumPy, as a one-shot query does (default: compiled, as the "
                             "service and bench_scale's process after its links phase rank them)")
    args = parser.parse_args()
    from bench_scale import rankings, sample_rows

    from recommender.rank.index import Index
    from recommender.store.compiledtopk import use_compiled

    print(f"lexical heads compiled: {use_compiled(not args.numpy)}", file=sys.stderr)

    policy = rankings(True)[args.ranking]
    passes, answers = [], {}
    with Index.open(args.index) as index:
        rows = sample_rows(len(index), 200, 0)[:args.queries + 1]
        ids = [index.data.store.by_rows([int(r)])[int(r)].id for r in rows]
        index.related_answer(ids[0], k=10, policy=policy, stored=False)
        passes.append(run_pass(index, policy, ids[1:], "touch", args.files))
        if args.dump:
            ranker = index.ranker(policy)
            for article in ids[1:]:
                related, _ = index.related_answer(article, k=10, policy=policy, stored=False)
                cand = ranker.score_rows(np.array([index.data.get(article).row]))[0]
                answers[article] = {"links": [[r.id, r.score, r.parts] for r in related], "candidates": digest(cand)}
    gc.collect()  # the first Index's mappings go
    with Index.open(args.index) as index:
        index.related_answer(ids[0], k=10, policy=policy, stored=False)
        passes.append(run_pass(index, policy, ids[1:], "reopen", args.files))
        for number in range(args.again):
            passes.append(run_pass(index, policy, ids[1:], f"again{number}", args.files))
    print(json.dumps({"ranking": args.ranking, "passes": passes}))
    if args.dump:
        args.dump.write_text(json.dumps(answers, indent=1, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
