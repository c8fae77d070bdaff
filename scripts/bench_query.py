"""Cold queries by id: wall time and peak memory of `recommender related ID` in fresh processes, against the code
before the precomputed query data (a git revision checked out into a temporary worktree), in the same run.

    python scripts/bench_query.py --index /tmp/me-mdn --id Web/API/Fetch_API [--runs 7] [--baseline-rev 9a4ade7]

Variants, each run as `python -m recommender.cli related ID --index INDEX --json -q` in a new process:
  baseline   the baseline revision's code (everything rebuilt in the query process)
  computed   this code, `--compute` (the list computed from the memory-mapped precomputed arrays)
  stored     this code as a user runs it (the last batch's stored list, when one stands; else computed)
  floor      `python -c "import json, numpy, click"`: what any process of the CLI pays before it starts work

The runs are interleaved (baseline, computed, stored, baseline, ...) so that load on the machine hits each
variant alike; one warm-up run of each is not counted (it also writes the .pyc files an installed package has:
PYTHONDONTWRITEBYTECODE is unset for the children). Wall time is measured around each process; peak memory is
that process's own ru_maxrss (os.wait4), and its CPU time (user + system, less disturbed than wall time when
other work shares the cores). Printed: median and min wall, median CPU, median and max peak RSS, ratios to the
baseline, and the load average. The index is only read.
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

ROOT = Path(__file__).resolve().parent.parent
BASELINE_REV = "9a4ade7"  # the last commit before the precomputed query data and stored lists


FLOOR = "import json, numpy, click; print(json.dumps({'related': []}))"  # the interpreter, NumPy and click alone


def run_once(code_root: Path, index: Path, article_id: str, extra: list[str]) -> tuple[float, float, float, dict]:
    """(wall seconds, CPU seconds, peak RSS in MB, the JSON printed) of one fresh `related` process (extra
    ["floor"]: a process that only imports what any run of the CLI imports, for scale)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(code_root)
    command = [sys.executable, "-m", "recommender.cli", "related", article_id, "--index", str(index), "--json",
               "-q", *extra] if extra != ["floor"] else [sys.executable, "-c", FLOOR]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(code_root))
    out = process.stdout.read()  # small outputs: read to the end, then reap the child ourselves for its rusage
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    process.stderr.close()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{err.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, json.loads(out)


def baseline_worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(where), rev], check=True,
                   capture_output=True)
    return where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--id", dest="article_id", default=None, help="Article id (default: the index's first).")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    args = parser.parse_args()
    article_id = args.article_id
    if article_id is None:
        sys.path.insert(0, str(ROOT))
        from recommender.rank.index import Index

        with Index.open(args.index) as index:
            article_id = index.data.store.ids()[0]

    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        base = baseline_worktree(args.baseline_rev, Path(tmp) / "baseline")
        try:
            variants = {"baseline": (base, []), "computed": (ROOT, ["--compute"]), "stored": (ROOT, []),
                        "floor": (ROOT, ["floor"])}
            figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
            answered: dict[str, set] = {name: set() for name in variants}
            answers: dict[str, list] = {}
            for round_no in range(args.runs + 1):
                for name, (code, extra) in variants.items():
                    wall, cpu, rss, printed = run_once(code, args.index, article_id, extra)
                    if round_no:  # round 0 warms up
                        figures[name].append((wall, cpu, rss))
                    answered[name].add(printed.get("answered_by", "computed (baseline code)"
                                                   if name == "baseline" else "python + numpy + click only"))
                    if name != "floor":
                        answers[name] = [(r["id"], r["score"]) for r in printed["related"]]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)

    print(f"recommender related {article_id} --index {args.index}: {args.runs} fresh processes per variant "
          f"(median of runs), baseline = revision {args.baseline_rev}")
    base_wall, base_cpu, base_rss = (statistics.median(run[i] for run in figures["baseline"]) for i in range(3))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'variant':<10} {'wall median':>11} {'wall min':>9} {'CPU median':>10} {'RSS median':>11} "
          f"{'RSS max':>8} {'wall ratio':>10} {'CPU ratio':>9} {'RSS ratio':>9}  answered by")
    for name, runs in figures.items():
        walls, cpus, rsses = ([run[i] for run in runs] for i in range(3))
        print(f"{name:<10} {statistics.median(walls):>10.3f}s {min(walls):>8.3f}s {statistics.median(cpus):>9.3f}s "
              f"{statistics.median(rsses):>9.1f}MB {max(rsses):>6.1f}MB {statistics.median(walls) / base_wall:>10.2f} "
              f"{statistics.median(cpus) / base_cpu:>9.2f} {statistics.median(rsses) / base_rss:>9.2f}  "
              f"{', '.join(sorted(answered[name]))}")
    ids = {name: [i for i, _ in a] for name, a in answers.items()}
    gap = max((abs(s - t) for a in answers.values() for (_, s), (_, t) in zip(a, answers["baseline"])
               if s is not None and t is not None), default=0.0)
    print(f"same links in the same order in every variant; largest score difference to the baseline {gap:.1e} "
          "(float32 rounding)" if all(i == ids["baseline"] for i in ids.values()) else
          "LINKS DIFFER: " + json.dumps({name: a[:3] for name, a in answers.items()}))


if __name__ == "__main__":
    main()
