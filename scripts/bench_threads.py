"""Embedding throughput per core, for the capacity model in docs/scale.md: articles (and texts) per second of
the whole vectorize step (preparation, chunking, model, pooling) on the first N articles of a corpus, with the
OpenVINO backend capped at 1, then 2, ... inference threads (as the Ray engine caps each actor).

    python scripts/bench_threads.py ../shared/corpora/mdn/articles.jsonl --articles 400 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from recommender.embed.openvino_embedder import THREADS_ENV


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backend", default="openvino")
    args = parser.parse_args()

    from recommender.batch.build import read_logged
    from recommender.embed.embedder import get_embedder
    from recommender.embed.prepare import Preparation, prepare
    from recommender.embed.vectorize import vectorize

    articles = read_logged(args.corpus).articles[: args.articles]
    texts = sum(len(prepare(a, Preparation()).texts) for a in articles)
    print(f"{len(articles)} articles of {args.corpus}: {texts} texts ({texts / len(articles):.2f} per article)")
    print(f"{'threads':>7} {'seconds':>8} {'articles/s':>11} {'texts/s':>8} {'articles/s/thread':>18}")
    for threads in args.threads:
        os.environ[THREADS_ENV] = str(threads)
        embedder = get_embedder(None, backend=args.backend)
        vectorize(articles[:8], embedder, progress=False)  # load and compile outside the timing
        start = time.perf_counter()
        _, _, stats = vectorize(articles, embedder, progress=False)
        seconds = time.perf_counter() - start
        print(f"{threads:7d} {seconds:8.1f} {len(articles) / seconds:11.1f} {stats.texts / seconds:8.1f} "
              f"{len(articles) / seconds / threads:18.1f}", flush=True)
        del embedder


if __name__ == "__main__":
    sys.exit(main())
