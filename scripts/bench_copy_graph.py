"""The copy graph of the near-duplicate collapse (recommender.batch.copy_reach), before and after issue 25: the
all-pairs product a full run made (every row against every vector) against the graph read from each article's
dense candidate pool (copy_reach.CopyFinder), on a built index, read only.

    python scripts/bench_copy_graph.py --index /work/tmp-lead/mdn [--threshold 0.98] [--depth 201] [--ivf]
    python scripts/bench_copy_graph.py --index /work/tmp-lead/mdn --links 500   # in the links step itself

Printed: the CPU seconds of the all-pairs product; the CPU seconds of the exact dense pools (what the ranking
retrieves for every list anyway, not a cost of the graph) and of reading the copies from them (the graph's
own cost in a full run now); the rows that read their title group or needed their full row; both edge sets
and whether they are equal. --ivf: the same with the pools of an IVF-SQ8 index built over the vectors as the
batch builds one above 150,000 articles (store.ann.IVFIndex), and how many exact edges it misses. --links N
instead: `link_rows` (default ranking) on N random rows with a CopyRecord attached as in a full run, the CPU ms
an article of the links and of reading the copies (CopyRecord.seconds, wall). Run it from a
worktree root with PYTHONPATH set; set OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 to compare on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def all_pairs(vectors: np.ndarray, codes: np.ndarray, threshold: float, block: int = 1024) -> set:
    """The full run's graph before: every row against every vector (copy_reach.copy_edges at ba6d750)."""
    from recommender.batch.window_reach import EPS
    from recommender.rank.linking import TITLE_COPY_COSINE

    n = len(vectors)
    low = min(threshold, TITLE_COPY_COSINE) - EPS
    edges = set()
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        sims = vectors[rows] @ vectors.T
        near = (sims >= low) & (np.arange(n)[None, :] > rows[:, None])
        i, j = np.nonzero(near)
        copy = (sims[i, j] >= threshold - EPS) | ((codes[rows[i]] == codes[j]) & (codes[j] >= 0))
        edges.update(zip(rows[i[copy]].tolist(), j[copy].tolist()))
    return edges


def from_pools(vectors: np.ndarray, codes: np.ndarray, threshold: float, pools: np.ndarray) -> tuple[set, float, dict]:
    """The graph read from each row's pool (copy_reach.CopyFinder.copies, as CopyRecord.add calls it)."""
    from recommender.batch.copy_reach import CopyFinder

    finder = CopyFinder(vectors, codes, threshold)
    edges = set()
    cpu = time.process_time()
    for q, pool in enumerate(pools):
        pool = pool[pool >= 0]
        cosines = vectors[pool] @ vectors[q]
        for b in finder.copies(q, pool, cosines, float(cosines.min())).tolist():
            edges.add((min(q, b), max(q, b)))
    return edges, time.process_time() - cpu, {"title group": finder.group_rows, "full row": finder.full_rows}


def show(vectors: np.ndarray, pairs: set, most: int = 5) -> None:
    """The cosines of a few pairs one graph has and the other not (float rounding at the cut, or a miss)."""
    for a, b in sorted(pairs)[:most]:
        print(f"  pair {a} {b}: cosine {float(vectors[a] @ vectors[b]):.7f}")


def in_links(index_dir: Path, vectors: np.ndarray, count: int) -> None:
    """The links step over `count` random rows, reading the copies as a full run does."""
    from dataclasses import replace

    from recommender.batch.copy_reach import CopyRecord
    from recommender.batch.incremental import Frozen
    from recommender.batch.relatedlists import job_for_index, link_rows
    from recommender.rank.index import Index
    from recommender.rank.policy import Policy

    policy = Policy()
    policy = replace(policy, ranking=replace(policy.ranking, learned="off"))
    with Index.open(index_dir) as index:
        job = job_for_index(index, vectors, policy)
        frozen = Frozen.fresh(vectors, index.data.store.ids())
        job.use_frozen(frozen)
        frozen.copies = record = CopyRecord(job)
        rows = np.random.default_rng(0).choice(len(vectors), count + 1, replace=False)
        link_rows(job, rows[:1])  # the first row pays what the ranker builds on first use
        cpu = time.process_time()
        link_rows(job, rows[1:])
        spent = time.process_time() - cpu
    print(f"links {1000 * spent / count:.2f} ms CPU an article over {count} rows; copies read "
          f"{1000 * record.seconds / (count + 1):.3f} ms an article; {len(record.found)} rows with copies, "
          f"{record.finder.group_rows} read their title group, {record.finder.full_rows} against every vector")


def main() -> None:
    import faiss

    from recommender.store.ann import IVFIndex

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="a built index (only read)")
    parser.add_argument("--threshold", type=float, default=0.98, help="[duplicates] threshold")
    parser.add_argument("--depth", type=int, default=201, help="dense pool depth ([ranking] candidates + 1)")
    parser.add_argument("--ivf", action="store_true", help="also with an IVF-SQ8 index's pools")
    parser.add_argument("--links", type=int, help="instead: the links step on this many random rows")
    args = parser.parse_args()
    vectors = np.ascontiguousarray(np.load(next(args.index.glob("query-*-vectors.npy"))), dtype=np.float32)
    codes = np.load(next(args.index.glob("query-*-facts_titles.npy")))
    print(f"{len(vectors)} articles, threshold {args.threshold}, pool depth {args.depth}")
    if args.links:
        in_links(args.index, vectors, args.links)
        return
    cpu = time.process_time()
    before = all_pairs(vectors, codes, args.threshold)
    print(f"before: all-pairs product {time.process_time() - cpu:.2f} s CPU, {len(before)} edges")
    cpu = time.process_time()
    _, pools = faiss.knn(vectors, vectors, args.depth, faiss.METRIC_INNER_PRODUCT)
    print(f"exact dense pools (the ranking's own retrieval): {time.process_time() - cpu:.2f} s CPU")
    after, seconds, rows = from_pools(vectors, codes, args.threshold, pools)
    print(f"after: copies read from the pools {seconds:.2f} s CPU, {len(after)} edges, rows {rows}; "
          f"equal to before: {after == before} (missing {len(before - after)}, extra {len(after - before)})")
    show(vectors, before ^ after)
    if args.ivf:
        cpu = time.process_time()
        ivf = IVFIndex.build(vectors)
        _, pools = ivf.search(vectors, args.depth)
        print(f"IVF-SQ8 (nprobe {ivf.nprobe}) built and searched: {time.process_time() - cpu:.2f} s CPU")
        approx, seconds, rows = from_pools(vectors, codes, args.threshold, pools)
        print(f"IVF pools: {seconds:.2f} s CPU, {len(approx)} edges, rows {rows}; missing {len(before - approx)} "
              f"of {len(before)}, extra {len(approx - before)}")
        show(vectors, before - approx)


if __name__ == "__main__":
    main()
