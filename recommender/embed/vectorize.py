"""Article vectors: prepare each article's texts, reuse cached vectors, embed the rest in rounds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..ingest.article import Article
from .embedder import Embedder
from .prepare import Preparation, combine, prepare
from ..common.progress import progress_bar
from .vector_cache import VectorCache

log = logging.getLogger(__name__)


@dataclass
class VectorizeStats:
    embedded: int = 0  # articles run through the model
    reused: int = 0  # articles whose vector came from the cache
    texts: int = 0  # texts (heads + chunks) the model read


def content_hashes(articles: Sequence[Article], preparation: Preparation) -> list[str]:
    """The content hash of each article under the given preparation."""
    return [prepare(a, preparation).content_hash(preparation) for a in articles]


def vectorize(
    articles: Sequence[Article],
    embedder: Embedder,
    preparation: Preparation = Preparation(),
    cache: VectorCache | None = None,
    *,
    batch_size: int = 32,
    round_size: int = 256,
    progress: bool = True,
) -> tuple[np.ndarray, list[str], VectorizeStats]:
    """Unit-length vectors (n x dim, float32) for the articles, their content hashes, and counts.

    Articles are embedded in rounds of `round_size`; each round is committed to the cache before the next
    starts, so an interrupted run loses at most one round of work.
    """
    prepared = [prepare(a, preparation) for a in articles]
    hashes = [p.content_hash(preparation) for p in prepared]
    model_key = embedder.fingerprint
    cached = cache.get_many(model_key, hashes) if cache is not None else {}
    stats = VectorizeStats(reused=sum(1 for h in hashes if h in cached))
    todo = [i for i, h in enumerate(hashes) if h not in cached]
    todo = list(dict.fromkeys(todo))
    fresh: dict[str, np.ndarray] = {}
    if todo:
        from ..common.render import plural

        log.info("embedding %s (%d reused from cache)", plural(len(todo), "article"), stats.reused)
    with progress_bar(total=len(todo), desc="embedding", unit="article", enabled=progress) as bar:
        for start in range(0, len(todo), round_size):
            rows = [i for i in todo[start:start + round_size] if hashes[i] not in fresh]
            texts: list[str] = []
            spans: list[tuple[int, int]] = []
            for i in rows:
                spans.append((len(texts), len(texts) + len(prepared[i].texts)))
                texts.extend(prepared[i].texts)
            vectors = embedder.encode(texts, batch_size=batch_size)
            done = []
            for i, (a, b) in zip(rows, spans):
                vec = combine(vectors[a], vectors[a + 1:b], preparation)
                fresh[hashes[i]] = vec
                done.append((hashes[i], vec))
            if cache is not None:
                cache.put_many(model_key, done)
            stats.embedded += len(rows)
            stats.texts += len(texts)
            bar.update(len(todo[start:start + round_size]))
    known = next(iter(fresh.values()), None)
    if known is None:
        known = next(iter(cached.values()), None)
    dim = known.shape[0] if known is not None else embedder.dimension  # no model load when all is cached
    matrix = np.zeros((len(articles), dim), dtype=np.float32)
    for row, h in enumerate(hashes):
        matrix[row] = cached[h] if h in cached else fresh[h]
    return matrix, hashes, stats
