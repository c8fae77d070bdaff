"""The index build's peak memory by phase (issue 25: what grows with n beyond the data stored), on
scripts/bench_scale.py's recombined MDN corpus of one size:

    PYTHONPATH=$PWD python scripts/profile_build_memory.py --n 80000 --work DIR [--json out.json]

Writes the corpus into DIR/corpus-N (kept, reused by a second run, so two versions of the code can be profiled
on the same corpus), then reads it, makes the synthetic vectors and windows and runs `write_index` as
bench_scale does, with the main functions of the build wrapped: on entering and leaving each, the process's
peak RSS (VmHWM) is read and reset (Linux: /proc/self/clear_refs 5), so each phase's own peak is exact, nested
phases included. Printed per phase: RSS at entry, peak, growth over the entry, seconds (wall). Functions a
version of the code does not have are skipped.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_scale  # noqa: E402

PHASES = [  # (module under recommender., function, class or None)
    ("store.lexindex", "build", "LexicalIndex"), ("store.lexindex", "fit_tfidf", None),
    ("store.lexindex", "scan_names", None), ("store.lexindex", "mentions_of", None),
    ("store.mentionmatrix", "found_arrays", None),
    ("store.lexindex", "document_hashes", None), ("store.lexindex", "save", "LexicalIndex"),
    ("store.lexindex", "csr_arrays", "LexicalIndex"), ("rank.querydata", "write_query_data", None),
    ("store.lextopk", "impact_order", None), ("batch.build", "write_windows", None),
    ("batch.build", "write_window_ann", None), ("batch.build", "build_for_size", None),
    ("batch.build", "measure_recall", None), ("batch.build", "write_metadata", None),
    ("rank.learneddata", "for_new_version", None)]


def status(key: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith(key + ":"))


def reset() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


class Phases:
    def __init__(self):
        self.stack: list[list] = []
        self.figures: dict[str, dict] = {}

    def enter(self, label: str) -> None:
        if self.stack:
            self.stack[-1][2] = max(self.stack[-1][2], status("VmHWM"))
        self.stack.append([label, status("VmRSS"), 0.0, time.perf_counter()])
        reset()

    def leave(self) -> None:
        label, start, peak, timer = self.stack.pop()
        peak = max(peak, status("VmHWM"))
        f = self.figures.setdefault(label, {"calls": 0, "start_mb": start, "peak_mb": 0.0, "growth_mb": 0.0,
                                            "seconds": 0.0})
        f["calls"] += 1
        f["peak_mb"], f["growth_mb"] = max(f["peak_mb"], peak), max(f["growth_mb"], peak - start)
        f["seconds"] += time.perf_counter() - timer
        if self.stack:
            self.stack[-1][2] = max(self.stack[-1][2], peak)
        reset()

    def wrap(self, module: str, name: str, cls: str | None) -> None:
        mod = importlib.import_module("recommender." + module)
        owner = getattr(mod, cls) if cls else mod
        fn = owner.__dict__.get(name) if cls else getattr(mod, name, None)
        if fn is None:
            return
        raw = fn.__func__ if isinstance(fn, classmethod) else fn
        label = f"{cls}.{name}" if cls else name

        @functools.wraps(raw)
        def wrapped(*args, **kwargs):
            self.enter(label)
            try:
                return raw(*args, **kwargs)
            finally:
                self.leave()

        setattr(owner, name, classmethod(wrapped) if isinstance(fn, classmethod) else wrapped)

    def run(self, label: str, fn, *args, **kwargs):
        self.enter(label)
        try:
            return fn(*args, **kwargs)
        finally:
            self.leave()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.15)
    args = parser.parse_args()
    from recommender.batch.build import read_logged, write_index
    from recommender.embed.prepare import Preparation
    from recommender.embed.vectorize import content_hashes
    from recommender.store.manifest import read_manifest

    phases = Phases()
    for module, name, cls in PHASES:
        phases.wrap(module, name, cls)
    records = bench_scale.read_mdn(bench_scale.MDN)
    corpus_dir, index_dir = args.work / f"corpus-{args.n}", args.work / f"index-{args.n}"
    if not corpus_dir.exists():
        bench_scale.write_corpus(corpus_dir, args.n, records, bench_scale.distinguishing_words(records, args.seed),
                                 args.seed)
    bases, _ = bench_scale.plan(args.n, len(records), args.seed)
    mdn_ids = [r["id"] for r in records]
    del records
    shutil.rmtree(index_dir, ignore_errors=True)
    reset()
    phases.enter("all")
    corpus = phases.run("read", read_logged, corpus_dir)
    vectors, windows = phases.run("synthetic vectors", bench_scale.synthetic_vectors, bench_scale.SOURCE_INDEX,
                                  mdn_ids, bases, args.noise, args.seed, args.work / f"windows-{args.n}.f16")
    preparation = Preparation()
    hashes = phases.run("content hashes", content_hashes, corpus.articles, preparation)
    phases.run("write_index", write_index, index_dir, corpus.articles, vectors, hashes,
               bench_scale.Stub(read_manifest(bench_scale.SOURCE_INDEX).model), preparation, stats={},
               windows=windows)
    phases.leave()
    for label, f in phases.figures.items():
        print(f"{label:28} x{f['calls']:<3} at entry {f['start_mb']:7.0f} MB  peak {f['peak_mb']:7.0f} MB  "
              f"growth {f['growth_mb']:7.0f} MB  {f['seconds']:7.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "phases": phases.figures}, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(index_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
