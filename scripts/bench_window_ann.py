"""Window candidates: the stored window index (recommender.store.windowann) against the exact product over every
stored window, on an index's real window vectors and on jittered copies scaled up.

For each size: build time (IVF training, adding, nprobe tuning), the index's bytes and the process's RSS growth,
a cold load (memory-mapped, page cache dropped for the file) and its first search, ms per query window of a
search for one article's windows (what a query by id does) at k=50 and k=200, and of a group of 256 windows (the
batch), each against the exact product over all windows (dequantised block by block, as rank/windows reads
them) measured in the same run, and recall@50 / recall@200 against exact search (own window excluded).

Jittered copies: the real windows repeated, each copy plus seeded Gaussian noise of norm --noise (0.5: a copy's
cosine to its original about 0.89, near the median real nearest neighbour's 0.86), re-normalised, then quantised
to codes x scales as the index stores windows. Never writes into the index folder (--work holds the saved files).

    python scripts/bench_window_ann.py --index /work/idx/mdn --sizes 0 400000 4000000 --work /tmp/wa

The tuning before and after (--lists): an IVF index is also tuned as it was before 2026-12-06 (the smallest of
OLD_NPROBES whose recall@50 reaches 0.98) and as it is now (windowrecall.RECALL_K / RECALL_TARGET over NPROBES); for
each nprobe (those two and --nprobes), recall@10 and recall@50, and the CPU a list of the batch's window search
costs: --lists articles' windows in groups of 256 articles, each query window asking max(32, 1,024 / its
article's windows) windows as windowstage.WindowStage.retrieve asks, the before (its nprobe, every centroid product
in float64: Coarse._exact) and the after (its nprobe, the float32 screen: Coarse.best) taking turns.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from recommender.store import windowann as wa
from recommender.store import windowrecall as wr
from recommender.store.manifest import read_manifest
from recommender.store.windowfiles import quantize, read_windows


OLD_NPROBES = (16, 24, 32, 48, 64, 96, 128, 192, 256)  # the tuning before: recall@50 >= 0.98 over these
COPY_MAX = 1_500_000  # windows up to which the exact baseline holds a float32 copy (2.3 GB)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def jittered(codes, scales, n: int, noise: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """n windows: the real ones repeated, copies after the first with noise, as int8 codes and scales."""
    rng = np.random.default_rng(seed)
    dim = codes.shape[1]
    out_codes = np.empty((n, dim), np.int8)
    out_scales = np.empty(n, np.float32)
    real = len(codes)
    for start in range(0, n, wa.BLOCK):
        rows = np.arange(start, min(n, start + wa.BLOCK))
        block = wa.window_rows(codes, scales, rows % real)
        copy = rows >= real
        block[copy] += rng.normal(0, noise / np.sqrt(dim), (int(copy.sum()), dim)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out_codes[rows], out_scales[rows] = quantize(block)
    return out_codes, out_scales


def per_call(fn, calls: list) -> float:
    """Seconds per call over the given argument list."""
    timer = time.perf_counter()
    for args in calls:
        fn(*args)
    return (time.perf_counter() - timer) / len(calls)


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cpu_per_call(fn, calls: list) -> float:
    """CPU seconds (this process) per call over the given argument list."""
    timer = time.process_time()
    for args in calls:
        fn(*args)
    return (time.process_time() - timer) / len(calls)


def list_searches(ann, codes, scales, offsets, owners: np.ndarray, exact_coarse: bool) -> None:
    """The batch's window search for these articles, 256 at a time, grouped by the windows each query window asks
    (windowstage.WindowStage.retrieve); exact_coarse: every centroid product in float64 (the code before)."""
    from recommender.rank.windowstage import MIN_PER_WINDOW, WINDOW_NEIGHBOURS

    coarse = ann.coarse
    if exact_coarse:
        coarse.best = coarse._exact
    try:
        for start in range(0, len(owners), 256):
            groups: dict[int, list] = {}
            for a in owners[start:start + 256]:
                q = wa.window_rows(codes, scales, slice(int(offsets[a]), int(offsets[a + 1])))
                groups.setdefault(max(MIN_PER_WINDOW, WINDOW_NEIGHBOURS // max(1, len(q))), []).append(q)
            for per, qs in groups.items():
                ann.search(np.concatenate(qs), per)
    finally:
        coarse.__dict__.pop("best", None)


def compare_tunings(ann, codes, scales, offsets, lists: int, extra: list[int], rounds: int = 3) -> None:
    """The tuning before and after, and the batch's window search at each (module docstring)."""
    checks = {k: wr.RecallCheck(codes, scales, k=k) for k in (10, 50)}
    before = wr.tune_nprobe(ann, codes, scales, k=50, target=0.98, nprobes=OLD_NPROBES, check=checks[50])
    after = wr.tune_nprobe(ann, codes, scales, check=checks[wr.RECALL_K])
    old, new = before["window_ann_nprobe"], after["window_ann_nprobe"]
    print(f"tuning before (recall@50 >= 0.98 over {OLD_NPROBES[0]}..): nprobe {old}; after (recall@{wr.RECALL_K} >= "
          f"{wr.RECALL_TARGET} over {wr.NPROBES[0]}..): nprobe {new}")
    owners = np.sort(np.random.default_rng(11).choice(len(offsets) - 1, min(lists, len(offsets) - 1), replace=False))
    windows = int(sum(offsets[a + 1] - offsets[a] for a in owners))
    print(f"{'nprobe':>6} {'coarse':>8} {'recall@10':>9} {'recall@50':>9}   CPU ms a list ({len(owners)} lists, "
          f"{windows / len(owners):.2f} windows each), turns")
    runs = [(old, True), (new, False)] + [(p, False) for p in extra if p not in (old, new)]
    spent: dict = {run: [] for run in runs}
    for _ in range(rounds):
        for nprobe, exact in runs:
            ann.nprobe = nprobe
            spent[(nprobe, exact)].append(cpu_per_call(
                lambda: list_searches(ann, codes, scales, offsets, owners, exact), [()]) / len(owners) * 1000)
    for nprobe, exact in runs:
        ann.nprobe = nprobe
        recalls = [checks[k].recall(ann) for k in (10, 50)]
        times = spent[(nprobe, exact)]
        print(f"{nprobe:>6} {'float64' if exact else 'screened':>8} {recalls[0]:>9.4f} {recalls[1]:>9.4f}   "
              f"{' '.join(f'{t:.3f}' for t in times)} (median {float(np.median(times)):.3f})"
              + ("  <- before" if exact else "  <- after" if nprobe == new else ""))
    queries = wa.window_rows(codes, scales, np.sort(np.random.default_rng(12).choice(len(codes), 1024, replace=False)))
    for m in sorted({old, new}):
        full = cpu_per_call(lambda: ann.coarse._exact(queries, m), [()] * rounds) / len(queries) * 1000
        screened = cpu_per_call(lambda: ann.coarse.best(queries, m), [()] * rounds) / len(queries) * 1000
        print(f"coarse lists of 1,024 query windows, m={m}: every product in float64 {full:.4f} ms a window, "
              f"float32 screen {screened:.4f}")
    ann.nprobe = new


def bench(label: str, codes, scales, offsets, work: Path, articles: int, exact_articles: int,
          flat_max: int | None, lists: int = 0, nprobes: list[int] = ()) -> None:
    n = len(codes)
    print(f"\n## {label}: {n:,} windows")
    rng = np.random.default_rng(3)
    # queries by id: one stored article's windows a search (articles of the real index, their rows in the copy)
    owners = rng.choice(len(offsets) - 1, min(articles, len(offsets) - 1), replace=False)
    calls = [wa.window_rows(codes, scales, slice(int(offsets[a]), int(offsets[a + 1]))) for a in owners]
    windows_per_call = float(np.mean([len(c) for c in calls]))
    group = wa.window_rows(codes, scales, np.sort(rng.choice(n, 256, replace=False)))

    # the exact baseline: one product with every window; a float32 copy held in memory (the batch's way, the
    # fastest exact search) up to COPY_MAX windows, else dequantised block by block (a query's way today)
    if n <= COPY_MAX:
        copy = wa.window_rows(codes, scales, slice(None))

        def exact_search(q, k):
            sims = q @ copy.T
            top = np.argpartition(-sims, k, axis=1)[:, :k]
            return np.take_along_axis(sims, top, 1), top
        baseline = "float32 copy in memory"
    else:
        def exact_search(q, k):
            return wr.exact_neighbours(codes, scales, q, k)
        baseline = "dequantised block by block"
    exact = {k: per_call(lambda q, k=k: exact_search(q, k), [(c,) for c in calls[:exact_articles]]) for k in (50, 200)}
    exact_group = per_call(lambda q: exact_search(q, 50), [(group,)])
    copy = None
    print(f"exact baseline: the product with all {n:,} windows, {baseline}")

    before, timer = rss_mb(), time.perf_counter()
    ann = wa.WindowANN.from_codes(codes, scales, flat_max)
    built = time.perf_counter() - timer
    timer = time.perf_counter()
    stats = wr.tune_nprobe(ann, codes, scales)
    tuned = time.perf_counter() - timer
    grown = rss_mb() - before
    if lists and ann.approximate:
        compare_tunings(ann, codes, scales, offsets, lists, list(nprobes))
    path = work / f"windowann-{n}.faiss"
    ann.save(path)
    size = path.stat().st_size
    recall = {50: wr.RecallCheck(codes, scales, k=50).recall(ann) if ann.approximate else 1.0}
    recall[200] = wr.RecallCheck(codes, scales, k=200, queries=200).recall(ann) if ann.approximate else 1.0
    print(f"index {ann.backend}" + (f" nlist {stats['window_ann_nlist']} nprobe {ann.nprobe}" if ann.approximate else "")
          + f": build {built:.1f} s + nprobe tuning {tuned:.1f} s, {size / 2 ** 20:.0f} MB on disk "
          f"({size / n:.0f} B a window), RSS +{grown:.0f} MB")
    del ann
    evict(path)
    timer = time.perf_counter()
    loaded = wa.WindowANN.load(path)
    load_s = time.perf_counter() - timer
    timer = time.perf_counter()
    loaded.search(calls[0], 50)
    first_s = time.perf_counter() - timer
    print(f"cold load (mmap, page cache dropped) {load_s * 1000:.1f} ms, first search {first_s * 1000:.1f} ms")
    warm = [loaded.search(c, 50) for c in calls[:5]]  # noqa: F841 - page in what the searches visit
    print(f"{'search':<34} {'ms/window':>10} {'exact ms/window':>16} {'ratio':>7} {'recall':>7}")
    for k in (50, 200):
        t = per_call(lambda q, k=k: loaded.search(q, k), [(c,) for c in calls])
        print(f"{f'one article ({windows_per_call:.1f} windows), k={k}':<34} {t / windows_per_call * 1000:>10.3f} "
              f"{exact[k] / windows_per_call * 1000:>16.3f} {exact[k] / t:>7.1f} {recall[k]:>7.4f}")
    t = per_call(lambda q: loaded.search(q, 50), [(group,)] * 3)
    print(f"{'group of 256 windows, k=50':<34} {t / 256 * 1000:>10.3f} {exact_group / 256 * 1000:>16.3f} "
          f"{exact_group / t:>7.1f} {recall[50]:>7.4f}")
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="an index folder with stored windows (read only)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 400_000],
                        help="window counts; 0 = the index's real windows")
    parser.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to each copy")
    parser.add_argument("--articles", type=int, default=200, help="articles whose windows are searched")
    parser.add_argument("--exact-articles", type=int, default=20, help="of them, searched by the exact product")
    parser.add_argument("--flat-max", type=int, default=None, help="windows up to which the index is flat")
    parser.add_argument("--lists", type=int, default=0,
                        help="compare the tuning before and after on this many articles' lists (0: not)")
    parser.add_argument("--nprobes", type=int, nargs="*", default=[], help="with --lists: more nprobes timed")
    parser.add_argument("--work", type=Path, required=True, help="a folder for the saved index files")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    codes, scales, offsets = read_windows(args.index, read_manifest(args.index))
    print(f"{args.index}: {len(offsets) - 1:,} articles, {len(codes):,} windows; FLAT_MAX {wa.FLAT_MAX:,}, "
          f"target recall@{wr.RECALL_K} {wr.RECALL_TARGET}; faiss threads {__import__('faiss').omp_get_max_threads()}")
    for size in args.sizes:
        if size == 0:
            size = len(codes)
        if size <= len(codes):  # the first `size` real windows (whole articles), under both index types
            last = int(np.searchsorted(offsets, size, side="right")) - 1
            part = int(offsets[last])
            for label, flat_max in (("flat", part), ("IVF", 0)):
                bench(f"real windows, {label}", codes[:part], scales[:part], offsets[:last + 1], args.work,
                      args.articles, args.exact_articles, flat_max, args.lists, args.nprobes)
        else:  # jittered copies
            timer = time.perf_counter()
            big_codes, big_scales = jittered(codes, scales, size, args.noise)
            print(f"\n(jittered {size:,} windows, noise {args.noise}, in {time.perf_counter() - timer:.1f} s)")
            bench(f"jittered copies, noise {args.noise}", big_codes, big_scales, offsets, args.work,
                  args.articles, max(3, args.exact_articles // (size // len(codes) or 1)), args.flat_max,
                  args.lists, args.nprobes)
            del big_codes, big_scales


if __name__ == "__main__":
    main()
