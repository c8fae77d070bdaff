"""The batch's reading in shards (engines other than the local one): workers read, clean, prepare and hash the
corpus shard by shard (recommender.ingest.shards), the driver reads bytes, merges, and keeps the prepared-article
cache. The Corpus is the local reader's; the content hashes are the ones `vectorize` would compute.

    corpus, hashes = read_with(engine, "content/", index_dir / "cache" / "prepared.sqlite", Preparation())
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

from ..embed.prepare import Preparation, prepare
from ..ingest.article import Article, Corpus
from ..ingest.shards import SHARD_BYTES, ShardResult, assemble, corpus_shards, read_shard

log = logging.getLogger(__name__)


def read_and_hash(common: tuple[str | None, Preparation], shard) -> tuple[ShardResult, list[list[str]]]:
    """A worker's task: one shard's articles (recommender.ingest.shards.read_shard) and their content hashes."""
    cache_path, preparation = common
    result = read_shard(cache_path, shard)
    return result, [[prepare(a, preparation).content_hash(preparation) for a in found] for found in result.articles]


def read_sharded(source: str | Path, map_shards: Callable[[Callable, Sequence, object], list],
                 cache_path: str | Path | None = None,
                 preparation: Preparation = Preparation(),
                 shard_bytes: int = SHARD_BYTES) -> tuple[Corpus, list[str]]:
    """(the corpus as read_corpus reads it, each article's content hash), the shards mapped by `map_shards`."""
    ignored: list[str] = []
    done = map_shards(read_and_hash, corpus_shards(source, ignored, shard_bytes),
                      (str(cache_path) if cache_path is not None else None, preparation))
    hashed: dict[int, tuple[str, tuple[str, str, str]]] = {}  # article object -> (hash, the texts it hashed)
    for result, hashes in done:
        for found, digests in zip(result.articles, hashes):
            for article, digest in zip(found, digests):
                hashed[id(article)] = (digest, (article.title, article.excerpt, article.body))
    if cache_path is None:
        corpus = assemble([result for result, _ in done], ignored)
    else:
        from ..ingest.prepared_cache import PreparedCache

        with PreparedCache(cache_path) as cache:
            corpus = assemble([result for result, _ in done], ignored, cache)
            log.info("prepared articles: %d inputs reused, %d cleaned", cache.hits, cache.misses)
    return corpus, [_hash(article, hashed, preparation) for article in corpus.articles]


def _hash(article: Article, hashed: dict, preparation: Preparation) -> str:
    """The worker's hash, unless merging changed the article's texts (a curated stub given a longer excerpt)."""
    digest, texts = hashed[id(article)]
    if (article.title, article.excerpt, article.body) != texts:
        return prepare(article, preparation).content_hash(preparation)
    return digest


def read_with(engine, source: str | Path, cache_path: str | Path | None = None,
              preparation: Preparation = Preparation()) -> tuple[Corpus, list[str] | None]:
    """The batch's read: in this process for the local engine (no hashes: `vectorize` computes them), in shards
    on the engine's workers otherwise; problems and ignored files logged either way."""
    from .build import log_corpus, read_logged

    if engine is None or engine.name == "local":
        return read_logged(source, cache_path=cache_path), None
    corpus, hashes = read_sharded(source, engine.map_shards, cache_path, preparation)
    log_corpus(corpus)
    return corpus, hashes
