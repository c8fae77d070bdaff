"""The batch on the local engine, then on the Ray engine, same corpus, each into fresh folders with its own empty
vector cache (so both embed everything): wall time of each, whether the outputs agree, and the overhead ratio.

    python scripts/bench_ray.py ../shared/corpora/mdn/articles.jsonl
    python scripts/bench_ray.py demo/ --ray-address auto      # on a running Ray cluster

Timings go to stdout as a small table; logs to stderr. Needs the ray extra (pip install '.[ray]').
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path


from recommender.rank.policy import Policy
from recommender.batch.nightly import run_batch
from recommender.batch.outputs import read_jsonl


def run(engine: str, corpus: Path, work: Path, args) -> tuple[float, dict, dict]:
    """Wall seconds, run record and {id: [(related id, score)]} of one batch into work/ENGINE-*."""
    start = time.perf_counter()
    record = run_batch(corpus, work / f"{engine}-index", work / f"{engine}-out", Policy().with_links(k=args.k),
                       model=args.model, backend=args.backend, progress=not args.quiet, engine=engine,
                       ray_address=args.ray_address if engine == "ray" else None)
    seconds = time.perf_counter() - start
    links = {item["id"]: [(r["id"], r["score"]) for r in item["related"]] for item in read_jsonl(work / f"{engine}-out")}
    return seconds, record, links


def compare(local: dict, ray: dict) -> dict:
    same_ids = sorted(local) == sorted(ray)
    shared = [key for key in local if key in ray]
    same_lists = sum(1 for key in shared if [i for i, _ in local[key]] == [i for i, _ in ray[key]])
    same_sets = sum(1 for key in shared if {i for i, _ in local[key]} == {i for i, _ in ray[key]})
    # the same link (article, related id) in both outputs: how far its score moved between engines
    diffs = [abs(score - theirs[i]) for key in shared for theirs in [dict(ray[key])]
             for i, score in local[key] if i in theirs]
    return {"ids_equal": same_ids, "articles": len(local), "lists_equal": same_lists / max(1, len(shared)),
            "sets_equal": same_sets / max(1, len(shared)), "max_score_diff": max(diffs, default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--work", type=Path, default=None, help="parent of the fresh folders (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the indexes and outputs")
    parser.add_argument("--model", default=None)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--ray-address", default=None, help="Ray cluster (default: a local Ray instance)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-ray-", dir=args.work))
    try:
        local_s, local_record, local = run("local", args.corpus, work, args)
        ray_s, ray_record, ray = run("ray", args.corpus, work, args)
        agreement = compare(local, ray)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"corpus {args.corpus}: {local_record.articles} articles, backend {local_record.backend}")
    print(f"{'engine':7} {'wall s':>9} {'embedded':>9}  phases (s)")
    for name, seconds, record in (("local", local_s, local_record), ("ray", ray_s, ray_record)):
        phases = ", ".join(f"{k} {v:.1f}" for k, v in record.seconds.items())
        print(f"{name:7} {seconds:9.1f} {record.embedded:9d}  {phases}")
    print(f"ids equal: {agreement['ids_equal']}; related lists equal: {agreement['lists_equal']:.4f} "
          f"(as sets: {agreement['sets_equal']:.4f}); max score difference of a link in both: "
          f"{agreement['max_score_diff']:.2e}")
    ratio = ray_s / local_s if local_s else math.nan
    print(f"overhead ratio ray/local: {ratio:.2f}" + (f" (kept in {work})" if args.keep else ""))


if __name__ == "__main__":
    sys.exit(main())
