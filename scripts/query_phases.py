"""Where a cold query by id spends its CPU time: each phase of `recommender related ID` timed with
time.process_time in fresh processes (median of runs), for the stored-list path and the computed path.

    python scripts/query_phases.py --index /tmp/me-mdn --id Web/API/Fetch_API [--runs 5]

Phases: importing NumPy and click (what any run of the CLI pays), importing the package, opening the index,
then reading the stored list (stored) or building the ranker, scoring and choosing the links (computed), and
rendering the JSON. The index is only read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
T = time.process_time
marks = [("start", T())]
import numpy as np, click
marks.append(("numpy+click", T()))
import recommender.cli
from recommender.rank.index import Index
from recommender.common.render import render_related
marks.append(("package imports", T()))
index = Index.open(sys.argv[1])
marks.append(("open index", T()))
info = index.data.get(sys.argv[2])
policy = index._policy(None, None)
if sys.argv[3] == "stored":
    from recommender.rank.storedlists import stored_links
    items = stored_links(index.data, info.row, policy, True)
    if items is None:
        raise SystemExit("no stored list stands for this index and policy")
    marks.append(("stored list", T()))
    related = index.related_items(items)
    marks.append(("metadata", T()))
else:
    ranker = index.ranker(policy)
    marks.append(("ranker", T()))
    cand = ranker.score_rows(np.array([info.row]))[0]
    marks.append(("score", T()))
    related = index._links(cand, policy, True, False)
    marks.append(("links", T()))
render_related({"id": info.id}, related, True, True, sys.argv[3])
marks.append(("render", T()))
print(json.dumps([(name, marks[i + 1][1] - marks[i][1]) for i, (name, _) in enumerate(marks[1:])]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--id", dest="article_id", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; CPU ms, median of {args.runs} runs")
    for mode in ("stored", "computed"):
        runs = []
        for _ in range(args.runs + 1):  # the first run warms up (and writes .pyc files)
            done = subprocess.run([sys.executable, "-c", CHILD, str(args.index), args.article_id, mode],
                                  capture_output=True, text=True, env=env)
            if done.returncode:
                print(f"{mode}: {done.stderr.strip().splitlines()[-1]}")
                break
            runs.append(json.loads(done.stdout))
        if len(runs) > 1:
            names = [name for name, _ in runs[1]]
            phases = {name: statistics.median(run[i][1] for run in runs[1:]) * 1000 for i, name in enumerate(names)}
            total = sum(phases.values())
            print(f"{mode:<9} " + "  ".join(f"{name} {ms:.0f}" for name, ms in phases.items()) + f"  (total {total:.0f})")


if __name__ == "__main__":
    main()
