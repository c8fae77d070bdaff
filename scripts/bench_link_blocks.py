"""The links phase per list on a kept index, in the blocks the batch ranks (issue 25): the job the nightly batch
builds (`relatedlists.job_for_index` over the article vectors, decoded from the index here) and `link_rows` over
blocks of consecutive rows, as `incremental.compute_links` and `all_links` hand them to it (256 rows a call, one
`score_rows` block each). Two passes over different blocks in the same process: the first pays what a process
reads and fills on first use (mapped pages, the window map), which a full batch pays once for a million lists;
the second is nearer what each list costs in the full phase.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/bench_link_blocks.py INDEX \\
        [--policy default|learned] [--rows blocks|sample] [--blocks 6] [--dump OUT.npz] [--profile OUT.prof]
    ... INDEX --rows all --part I/N [--log-every 20000]    # the full links phase, N processes (one per core)
    ... INDEX --rows all --claim FILE                      # the same, blocks claimed from a counter in FILE
    ... INDEX --candidates 100                             # each pool's depth ([ranking] candidates) changed

--rows sample: bench_scale's 200 sample rows instead (drawn from the first 10,000 rows; one block of 199 after a
first row), what `bench_scale.py` times. --rows all: every row, in blocks of 256; with --part I/N this process takes
every N-th block from the I-th (run N of them at once, one per core: the phase's wall is the slowest part's set-up
plus its pass), printing progress lines as it goes. --claim FILE (with --rows all, instead of --part): each process
takes the next block nobody has taken from a counter in FILE (absent or empty at the start), as the Ray engine
hands its block tasks to whichever worker is free: the processes end within a block of each other, where a fixed
share waits on the slower process. --dump writes every list's links (rows, scores) for comparing two codes'
outputs (`--compare A.npz B.npz`; each side may be a phase's parts, comma-separated). Printed on stderr: the
set-up, then per pass wall and CPU ms a list (user and system apart: page faults show as system time). Compare CPU
figures of two codes measured in turns, under the same load.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parent


def bench_scale():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPTS / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def claimed(path: str, n: int, block: int):
    """Blocks of consecutive rows, each the next one no process has taken: a counter in the file at `path`,
    read and moved on under an exclusive lock."""
    with open(path, "a+") as handle:
        while True:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                start = int(handle.read().strip() or 0)
                if start < n:  # emptied, then written ("a+" writes at the end, which is now its start)
                    handle.seek(0)
                    handle.truncate()
                    handle.write(str(start + block))
                    handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
            if start >= n:
                return
            yield np.arange(start, min(start + block, n))


def read_dump(paths: str) -> dict:
    """A dump, or several (comma-separated: the parts of one phase) as one, its lists in row order."""
    parts = []
    for path in paths.split(","):
        with np.load(path) as handle:
            parts.append(dict(handle))
    if len(parts) == 1:
        return parts[0]
    rows, lens, links, scores = (np.concatenate([part[key] for part in parts]) for key in
                                 ("rows", "lens", "links", "scores"))
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))  # each list's first link, as concatenated
    order = np.argsort(rows, kind="stable")
    ordered = lens[order]
    # each link's place, the lists taken in row order: its list's start, then its place within the list
    at = np.repeat(starts[order], ordered) + np.arange(int(ordered.sum())) - np.repeat(
        np.concatenate(([0], np.cumsum(ordered)[:-1])), ordered)
    return {"rows": rows[order], "lens": ordered, "links": links[at], "scores": scores[at]}


def compare(a_path: str, b_path: str) -> None:
    """How many lists of two dumps differ in their links, and in their scores alone (each array read once: an
    .npz member read in the loop was read again for every list). Each side may be several dumps, comma-separated
    (the parts of one phase): their lists are compared row by row."""
    a, b = read_dump(a_path), read_dump(b_path)
    if not np.array_equal(a["rows"], b["rows"]):
        sys.exit("the dumps are of different rows")
    owner_a = np.repeat(np.arange(len(a["lens"])), a["lens"])
    owner_b = np.repeat(np.arange(len(b["lens"])), b["lens"])
    same_len = a["lens"] == b["lens"]
    links_differ = ~same_len
    scores_differ = np.zeros(len(same_len), dtype=bool)
    worst = 0.0
    ok_a, ok_b = same_len[owner_a], same_len[owner_b]  # entry by entry where the lists are as long
    la, lb = a["links"][ok_a], b["links"][ok_b]
    sa, sb = a["scores"][ok_a], b["scores"][ok_b]
    owner = owner_a[ok_a]
    links_differ[np.unique(owner[np.any((la != lb).reshape(len(la), -1), axis=1)])] = True
    gap = ~((sa == sb) | (np.isnan(sa) & np.isnan(sb)))
    gap = gap.reshape(len(sa), -1).any(axis=1)
    scores_differ[np.unique(owner[gap])] = True
    scores_differ &= ~links_differ
    if scores_differ.any():
        worst = float(np.nanmax(np.abs(sa - sb).reshape(len(sa), -1)[scores_differ[owner]]))
    print(f"{len(a['lens'])} lists: {int(links_differ.sum())} differ in their links, {int(scores_differ.sum())} more "
          f"in scores alone (largest difference {worst:.3g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", nargs="?")
    parser.add_argument("--policy", choices=("default", "learned"), default="learned")
    parser.add_argument("--rows", choices=("blocks", "sample", "all"), default="blocks")
    parser.add_argument("--part", default="1/1", help="--rows all: this process's share, I/N (blocks I-1, I-1+N, ...)")
    parser.add_argument("--claim", help="--rows all: claim blocks from a counter in this file (instead of --part)")
    parser.add_argument("--log-every", type=int, default=20_000, help="--rows all: lists between progress lines")
    parser.add_argument("--blocks", type=int, default=6, help="blocks of 256 rows, half in each pass")
    parser.add_argument("--dump", help="write every list's links to this .npz")
    parser.add_argument("--profile", help="cProfile the last pass into this file")
    parser.add_argument("--candidates", type=int, help="each pool's depth ([ranking] candidates; default the policy's)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="compare two dumps (each may be several, comma-separated) and exit")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    from recommender.batch.relatedlists import job_for_index, link_rows
    from recommender.rank.index import Index
    from recommender.rank.ranking import QUERY_BLOCK

    scale = bench_scale()
    policy = scale.rankings(True)[args.policy]
    if args.candidates:
        from dataclasses import replace

        policy = replace(policy, ranking=replace(policy.ranking, candidates=args.candidates))
    timer, clock = time.perf_counter(), time.process_time()
    with Index.open(Path(args.index)) as index:
        ann, n = index.data.vectors, index.data.vectors.count
        vectors = np.vstack([ann.rows(s, min(s + 100_000, n)) for s in range(0, n, 100_000)])
    sample = scale.sample_rows(n, 200, 0)
    if args.rows == "sample":
        passes = [[sample[1:]]]
    elif args.rows == "all" and args.claim:  # the full phase, blocks claimed as this process gets to them
        passes = [claimed(args.claim, n, QUERY_BLOCK)]
    elif args.rows == "all":  # the full phase, or one of N processes' interleaved share of its blocks
        part, parts = (int(x) for x in args.part.split("/"))
        passes = [[np.arange(s, min(s + QUERY_BLOCK, n)) for s in range((part - 1) * QUERY_BLOCK, n,
                                                                         parts * QUERY_BLOCK)]]
    else:
        starts = np.sort(np.random.default_rng(7).choice(n // QUERY_BLOCK, size=args.blocks, replace=False))
        blocks = [np.arange(s, s + QUERY_BLOCK) for s in starts * QUERY_BLOCK]
        passes = [blocks[:len(blocks) // 2], blocks[len(blocks) // 2:]]
    out, done = [], []
    with Index.open(Path(args.index)) as index:
        job = job_for_index(index, vectors, policy, learned=index.learned_model(policy))
        link_rows(job, sample[:1])  # the ranker, and what it builds on first use
        print(f"set-up {time.perf_counter() - timer:.1f} s wall, {time.process_time() - clock:.1f} s CPU",
              file=sys.stderr)
        for number, blocks in enumerate(passes, 1):
            profile = None
            if args.profile and number == len(passes):
                import cProfile

                profile = cProfile.Profile()
                profile.enable()
            timer, before = time.perf_counter(), os.times()
            logged = 0
            for rows in blocks:
                lists = link_rows(job, rows)
                if args.dump:
                    out += lists
                    done.append(rows)
                logged += len(rows)
                if args.rows == "all" and logged % args.log_every < len(rows):
                    now = os.times()
                    print(f"{time.strftime('%H:%M:%S')} {logged} lists: {time.perf_counter() - timer:.0f} s wall, "
                          f"{(now.user + now.system - before.user - before.system) / logged * 1000:.2f} ms CPU a "
                          f"list", file=sys.stderr, flush=True)
            after, wall = os.times(), time.perf_counter() - timer
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            count = max(1, logged)  # a process that found every block taken ranks none
            user, system = (after.user - before.user) / count * 1000, (after.system - before.system) / count * 1000
            print(f"pass {number}, {args.policy}, {args.rows}: {wall / count * 1000:.2f} ms wall, "
                  f"{user + system:.2f} ms CPU ({user:.2f} user, {system:.2f} system) a list over {count} lists",
                  file=sys.stderr)
    if args.dump:
        flat = [link for chosen in out for link in chosen]
        np.savez(args.dump, rows=np.concatenate(done), lens=np.array([len(chosen) for chosen in out]),
                 links=np.array([link.row for link in flat], np.int64),
                 scores=np.array([link.score for link in flat], np.float64))


if __name__ == "__main__":
    main()
