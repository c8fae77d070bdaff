"""Speed benchmark, one command, every figure measured in the same run on the same inputs:

* embedding: texts per second of each backend on real short texts (title + excerpt) and long ones (256 word
  pieces), its ratio to the PyTorch fp32 default, and the cosine of its vectors to the default's;
* queries: wall time of `recommender related ID` and `recommender search TEXT` as subprocesses (start-up included);
* scaling: all-pairs top-10 time and recall@10 against exact search, index build time and bytes per million
  vectors, for flat and IVF-SQ8 indexes on vectors sampled around real embeddings (interpolations between real
  neighbours plus noise: Gaussian noise alone has no neighbour structure and gives meaningless recall).

    python scripts/bench.py --index mdn-index --query-id Web/API/Fetch_API --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


def real_texts(limit_short: int, limit_long: int) -> tuple[list[str], list[str]]:
    short, long = [], []
    with open(CORPORA / "mdn" / "articles.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if len(short) < limit_short:
                short.append(f"{r['title']}. {r.get('excerpt') or r['text'][:300]}")
            if len(long) < limit_long and len(r["text"]) > 4000:
                long.append(f"{r['title']}. {r['text'][:4000]}")
            if len(short) >= limit_short and len(long) >= limit_long:
                break
    return short, long


def bench_embedding(backends: list[str], n_short: int, n_long: int) -> None:
    from recommender.embed.embedder import get_embedder

    short, long = real_texts(n_short, n_long)
    print(f"\n## embedding ({n_short} short texts, {n_long} long texts of 256 word pieces; texts/s)")
    print(f"{'backend':12} {'short':>8} {'ratio':>6} {'long':>8} {'ratio':>6} {'cos min':>9}")
    reference: dict[str, tuple[float, np.ndarray]] = {}
    for backend in backends:
        embedder = get_embedder(None, backend=backend)
        row = [f"{embedder.backend:12}"]
        cosines = []
        for name, texts in (("short", short), ("long", long)):
            embedder.encode(texts[:32])  # warm-up: load, compile, first-batch allocations
            start = time.perf_counter()
            vectors = embedder.encode(texts)
            rate = len(texts) / (time.perf_counter() - start)
            reference.setdefault(name, (rate, vectors))
            base_rate, base_vectors = reference[name]
            cosines.append(float((vectors * base_vectors).sum(axis=1).min()))
            row += [f"{rate:8.1f}", f"{rate / base_rate:6.2f}"]
        print(" ".join(row), f"{min(cosines):9.5f}")


def wall(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_queries(index: Path, query_id: str, runs: int) -> None:
    print(f"\n## queries on {index} (median of {runs} runs, process start-up included)")
    related = wall(["recommender", "related", query_id, "--index", str(index), "-q"], runs)
    search = wall(["recommender", "search", "how do I make an HTTP request", "--index", str(index), "-q"], max(1, runs // 2))
    print(f"related by id: {related:.3f} s   search (loads the model): {search:.3f} s   ratio {search / related:.1f}")


def synthetic(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n unit vectors around real ones: a point between a real vector and one of its 10 nearest, plus noise."""
    import faiss

    rng = np.random.default_rng(seed)
    flat = faiss.IndexFlatIP(real.shape[1])
    flat.add(real)
    _, neighbours = flat.search(real, 11)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        i = rng.integers(0, len(real), m)
        j = neighbours[i, rng.integers(1, 11, m)]
        t = rng.uniform(0, 0.5, (m, 1)).astype(np.float32)
        block = (1 - t) * real[i] + t * real[j] + rng.normal(0, 0.15 / np.sqrt(real.shape[1]), (m, real.shape[1]))
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_topk(vectors: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, found = flat.search(vectors[rows], k + 1)
    return np.array([[r for r in line if r != q][:k] for q, line in zip(rows, found)])


def bench_scaling(real: np.ndarray, sizes: list[int], flat_max: int, sample: int, target: float = 0.98) -> None:
    from recommender.rank.allpairs import LinkRules, all_pairs_topk, rescore
    from recommender.store.ann import FlatIndex, IVFIndex

    print(f"\n## scaling: all-pairs top-10 on vectors sampled around {len(real)} real embeddings")
    print(f"{'n':>9} {'index':14} {'build s':>8} {'all-pairs s':>12} {'recall@10':>10} {'MB per 1M':>10}")
    for n in sizes:
        vectors = synthetic(real, n)
        rows = np.random.default_rng(1).choice(n, min(sample, n), replace=False)
        truth = exact_topk(vectors, rows, 10)
        kinds = [FlatIndex, IVFIndex] if n <= flat_max else [IVFIndex]
        for kind in kinds:
            start = time.perf_counter()
            index = kind.build(vectors)
            built = time.perf_counter() - start
            tmp = Path(f"/tmp/bench-index-{n}.faiss")
            index.save(tmp)
            per_million = tmp.stat().st_size / n * 1e6 / 2**20
            tmp.unlink()
            label = kind.backend
            if kind is IVFIndex:  # the smallest nprobe whose recall@10 on the sample reaches the target
                sweep, best = [], (0.0, 8)
                for nprobe in (8, 16, 32, 64):
                    index.index.nprobe = nprobe
                    _, found = index.search(vectors[rows], 31)  # as all_pairs_topk does: 3k, re-scored
                    _, found = rescore(vectors, rows, found)
                    found = [[r for r in line if r != q][:10] for q, line in zip(rows, found)]
                    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
                    sweep.append(f"{nprobe}:{recall:.4f}")
                    if recall >= target or recall <= best[0] + 0.002:  # reached, or no longer improving
                        best = (recall, nprobe) if recall >= target else best
                        break
                    best = (recall, nprobe)
                index.index.nprobe = best[1]
                print(f"{'':9} nprobe sweep (nlist {index.index.nlist}): {' '.join(sweep)}")
                label = f"ivf-sq8/{index.index.nprobe}"
            start = time.perf_counter()
            _, found = all_pairs_topk(index, vectors, LinkRules(k=10), block=4096)
            pairs = time.perf_counter() - start
            recall = np.mean([len(set(found[r]) & set(t)) / 10 for r, t in zip(rows, truth)])
            print(f"{n:9d} {label:14} {built:8.1f} {pairs:12.1f} {recall:10.4f} {per_million:10.0f}", flush=True)
            del index
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="an index for the query timings and the real vectors")
    parser.add_argument("--query-id", default="Web/API/Fetch_API")
    parser.add_argument("--backends", nargs="*", default=["torch-fp32", "torch-bf16", "openvino"])
    parser.add_argument("--short", type=int, default=512)
    parser.add_argument("--long", type=int, default=128)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--flat-max", type=int, default=150_000, help="largest size also run with a flat index")
    parser.add_argument("--sample", type=int, default=2000, help="queries whose recall is checked")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], choices=["embedding", "queries", "scaling"])
    args = parser.parse_args()
    if "embedding" not in args.skip:
        bench_embedding(args.backends, args.short, args.long)
    if args.index and "queries" not in args.skip:
        bench_queries(args.index, args.query_id, args.runs)
    if args.index and "scaling" not in args.skip and args.sizes:
        from recommender import Index

        with Index.open(args.index) as index:
            real = index.data.vectors.vectors()
        bench_scaling(real, args.sizes, args.flat_max, args.sample)


if __name__ == "__main__":
    sys.exit(main())
