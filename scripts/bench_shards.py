"""The batch's read phase (read, clean, prepare, content-hash) and its lexical fit on the local engine and on the
Ray engine (shards as Ray tasks), in one run: seconds of each, the Ray/local ratio, and whether the results are
identical (articles, problems, hashes; vocabulary, IDF, TF-IDF and mention matrices).

    python scripts/bench_shards.py ../shared/corpora/mdn/articles.jsonl --work /tmp/bench
    python scripts/bench_shards.py CORPUS_DIR --work /tmp/bench --ray-address auto   # a running cluster
    python scripts/bench_shards.py CORPUS --work /tmp/bench --driver-share   # the driver's serial share

The read is timed twice on each engine: from an empty prepared-article cache (a first run: every input is
cleaned) and again with it filled (a nightly run over an unchanged corpus). Ray's start is not counted. Needs the
ray extra (pip install '.[ray]'). Prints a table to stdout; logs to stderr.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import shutil
import time
from pathlib import Path

import numpy as np

from recommender.batch.engines import LocalEngine, get_engine
from recommender.batch.shardread import read_with
from recommender.embed.prepare import Preparation
from recommender.embed.vectorize import content_hashes
from recommender.store.lexindex import LexicalIndex
from recommender.store.lexshards import build_sharded, shard_count


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def read_phase(engine, corpus: Path, cache: Path):
    """(corpus, content hashes) as the batch gets them on this engine (the local engine hashes in vectorize)."""
    read, hashes = read_with(engine, corpus, cache, Preparation())
    return read, hashes if hashes is not None else content_hashes(read.articles, Preparation())


def same_index(a: LexicalIndex, b: LexicalIndex) -> bool:
    def same(x, y):
        return x.shape == y.shape and all(np.array_equal(getattr(x, k), getattr(y, k))
                                          for k in ("indptr", "indices", "data"))
    return (a.vocabulary == b.vocabulary and np.array_equal(a.idf, b.idf) and same(a.tfidf, b.tfidf)
            and same(a.mentions, b.mentions) and a.name_weights == b.name_weights)


class Serial:
    """map_shards in this process with each task's input and result pickled as Ray ships them, timing the
    tasks apart: what is left of a phase's time is the driver's serial share, which more cores do not shorten."""

    def __init__(self):
        self.tasks = 0.0

    def map_shards(self, fn, parts, common=None):
        out = []
        for part in parts:  # drawing a part reads its bytes: the driver's
            start = time.perf_counter()
            result = pickle.dumps(fn(pickle.loads(pickle.dumps(common)), pickle.loads(pickle.dumps(part))))
            self.tasks += time.perf_counter() - start
            out.append(pickle.loads(result))
        return out


def driver_share(corpus: Path, work: Path) -> None:
    """Print, for each phase, the tasks' and the driver's seconds and ms per article (one process)."""
    from recommender.batch.shardread import read_sharded

    cache = work / "serial-prepared.sqlite"
    for phase in ("read, cold cache", "read, warm cache", "lexical fit"):
        serial = Serial()
        start = time.perf_counter()
        if phase.startswith("read"):
            read, _ = read_sharded(corpus, serial.map_shards, cache, Preparation())
            n = len(read.articles)
        else:
            ids, texts = [a.id for a in read.articles], [(a.title, a.excerpt, a.body) for a in read.articles]
            build_sharded(ids, texts, serial.map_shards, shard_count(n, 2))
        total = time.perf_counter() - start
        print(f"one process, {phase}: {total:.2f} s, tasks {serial.tasks:.2f} s ({1000 * serial.tasks / n:.3f} ms "
              f"per article), driver {total - serial.tasks:.2f} s ({1000 * (total - serial.tasks) / n:.3f} ms per "
              f"article, {(total - serial.tasks) / total:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="folder for the prepared-article caches")
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("--driver-share", action="store_true",
                        help="only time the driver's serial share of each phase, in one process (no Ray)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    if args.driver_share:
        driver_share(args.corpus, args.work)
        return
    rows = {}
    local, ray = LocalEngine(), get_engine("ray", address=args.ray_address)
    try:
        results = {}
        for name, engine in (("local", local), ("ray", ray)):
            cache = args.work / f"{name}-prepared.sqlite"
            rows[(name, "read, cold cache")], _ = timed(lambda: read_phase(engine, args.corpus, cache))
            rows[(name, "read, warm cache")], results[name] = timed(lambda: read_phase(engine, args.corpus, cache))
        (corpus, hashes), (ray_corpus, ray_hashes) = results["local"], results["ray"]
        same_read = ([a.to_dict() for a in corpus.articles] == [a.to_dict() for a in ray_corpus.articles]
                     and corpus.problems == ray_corpus.problems and hashes == ray_hashes)
        ids, texts = [a.id for a in corpus.articles], [(a.title, a.excerpt, a.body) for a in corpus.articles]
        shards = shard_count(len(ids), ray.workers())
        rows[("local", "lexical fit")], whole = timed(lambda: LexicalIndex.build(ids, texts))
        rows[("ray", "lexical fit")], sharded = timed(lambda: build_sharded(ids, texts, ray.map_shards, shards))
        cpus = ray.workers()
    finally:
        ray.close()
    print(f"{args.corpus}: {len(corpus.articles):,} articles, {len(corpus.problems)} problems; Ray: {cpus} CPUs, "
          f"lexical fit in {shards} shards")
    print(f"{'phase':<20} {'local s':>9} {'ray s':>9} {'ray/local':>10}")
    for phase in ("read, cold cache", "read, warm cache", "lexical fit"):
        a, b = rows[("local", phase)], rows[("ray", phase)]
        print(f"{phase:<20} {a:>9.2f} {b:>9.2f} {b / a:>10.2f}")
    print(f"identical read (articles, problems, hashes): {same_read}; identical lexical index: "
          f"{same_index(whole, sharded)}")


if __name__ == "__main__":
    main()
