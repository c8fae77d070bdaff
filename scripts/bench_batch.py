"""Nightly-batch timings on a real corpus: a first full run, a rerun with nothing changed, then a run after
changing 1% and one after changing 10% of the articles (each followed by a rerun with nothing changed), each
under `/usr/bin/time -v`, with ratios to the first run of the same session.

    python scripts/bench_batch.py ../shared/corpora/mdn/articles.jsonl --work /tmp/bench-batch

The work folder is wiped first, so the first run embeds everything (no cached vectors). With `--from-index DIR`
the work index starts as a copy of DIR (its vectors cached: the first run ranks every list but embeds nothing),
and with `--train-gold FILE` a learned ranking is trained on it first (`recommender train --gold FILE`), so every
run ranks with the learned model (issue 15: incremental runs under a learned ranking).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path


def timed(command: list[str], log: Path) -> dict:
    """Run a command under /usr/bin/time -v; return wall seconds and peak RSS (MB), the run record."""
    proc = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    log.write_text(proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}); see {log}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", proc.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"wall": seconds, "wall_text": wall, "rss_mb": rss / 1024, "record": json.loads(proc.stdout)}


def changed_copy(source: Path, target: Path, share: float, seed: int = 0) -> int:
    lines = source.read_text(encoding="utf-8").splitlines()
    picks = set(random.Random(seed).sample(range(len(lines)), max(1, round(len(lines) * share))))
    out = []
    for i, line in enumerate(lines):
        if i in picks:
            record = json.loads(line)
            record["text"] = record.get("text", "") + "\n\nUpdated: this page was revised with a new example."
            line = json.dumps(record, ensure_ascii=False)
        out.append(line)
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return len(picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="a JSONL corpus")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-batch"))
    parser.add_argument("--shares", type=float, nargs="+", default=[0.01, 0.10],
                        help="shares of articles changed for the runs after the rerun (each from the original)")
    parser.add_argument("--from-index", type=Path, help="start from a copy of this index (never written)")
    parser.add_argument("--train-gold", type=Path, help="train a learned ranking on this gold file first")
    parser.add_argument("extra", nargs="*", help="extra options for `recommender batch` (after --)")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    base = [sys.executable, "-m", "recommender.cli", "batch", "--index", str(args.work / "index"), "--out", str(args.work / "out"),
            "--json", "-q", *args.extra]
    def command(corpus: Path) -> list[str]:
        return base[:4] + [str(corpus)] + base[4:]

    # the site's corpus keeps its path from night to night (the prepared-article cache keys on path and bytes)
    corpus = args.work / "corpus" / args.corpus.name
    corpus.parent.mkdir()
    shutil.copyfile(args.corpus, corpus)
    if args.from_index:
        shutil.copytree(args.from_index, args.work / "index")
    if args.train_gold:
        subprocess.run([sys.executable, "-m", "recommender.cli", "train", "--index", str(args.work / "index"),
                        "--gold", str(args.train_gold)], check=True, capture_output=True)
    runs = [
        ("first full run", timed(command(corpus), args.work / "first.time")),
        ("nothing changed", timed(command(corpus), args.work / "same.time")),
    ]
    for share in args.shares:  # each run changes `share` of the original corpus (the previous run's changes revert)
        n_changed = changed_copy(args.corpus, corpus, share, seed=int(share * 1000))
        runs.append((f"{n_changed} changed ({share:.0%})", timed(command(corpus), args.work / f"changed-{share}.time")))
        runs.append(("nothing changed again", timed(command(corpus), args.work / f"same-{share}.time")))
    first = runs[0][1]["wall"]
    print(f"{'run':24} {'wall':>10} {'ratio':>7} {'peak MB':>8} {'embedded':>9}  {'lexical':>11}  {'ranking':>8}  "
          f"{'lists':>18}  phases (s)")
    for name, r in runs:
        rec = r["record"]
        phases = ", ".join(f"{k} {v:.1f}" for k, v in rec["seconds"].items())
        print(f"{name:24} {r['wall_text']:>10} {r['wall'] / first:7.3f} {r['rss_mb']:8.0f} {rec['embedded']:9d}  "
              f"{rec.get('lexical_update') or '-':>11}  {rec.get('ranking') or '-':>8}  {lists(rec):>18}  {phases}")
        if rec.get("lists"):
            print(f"{'':24} reasons: {rec['lists']['reasons']}")


def lists(rec: dict) -> str:
    info = rec.get("lists")
    return "outputs kept" if not info else f"{info['recomputed']} ({info['kind']})"


if __name__ == "__main__":
    main()
