"""Article vectors and window vectors: prepare each article's texts, reuse cached vectors, embed the rest in rounds."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..ingest.article import Article
from .carried import Carried
from .embedder import Embedder
from .prepare import Preparation, PreparedText, combine, prepare
from ..common.progress import progress_bar
from .vector_cache import VectorCache, text_key

log = logging.getLogger(__name__)


@dataclass
class VectorizeStats:
    embedded: int = 0  # articles run through the model
    reused: int = 0  # articles whose vector came from the cache
    texts: int = 0  # texts (heads + windows) the model read (not those whose vector the cache had)


@dataclass
class Windows:
    """Every article's window vectors (the head first, then every body window), stacked: article i owns rows
    offsets[i]:offsets[i + 1] of `vectors` (float16, unit length before rounding)."""

    vectors: np.ndarray
    offsets: np.ndarray

    def codes(self, quantize) -> tuple[np.ndarray, np.ndarray]:
        """(int8 codes, float32 scales) of every window (store.windowfiles.quantize; as carried.CarriedWindows)."""
        return quantize(self.vectors)

    @classmethod
    def stack(cls, blocks: Sequence[np.ndarray], dim: int) -> "Windows":
        counts = np.array([len(b) for b in blocks], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        vectors = np.concatenate(blocks).astype(np.float16) if blocks else np.zeros((0, dim), np.float16)
        return cls(np.ascontiguousarray(vectors), offsets)


def embed_texts(texts: list[str], embedder: Embedder, cache: VectorCache | None, model_key: str,
                batch_size: int) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The vectors of texts (a round's heads and windows), and the (text key, vector) pairs the model made for
    the cache. Texts whose vector the cache holds (an unchanged window of a changed article) are not read again;
    with nothing cached (a first build) every text is embedded in one call, exactly as without the cache."""
    if cache is None:
        return embedder.encode(texts, batch_size=batch_size), []
    keys = [text_key(t) for t in texts]
    known = cache.get_texts(model_key, keys)
    todo = [j for j, key in enumerate(keys) if key not in known]
    if len(todo) == len(texts):
        vectors = embedder.encode(texts, batch_size=batch_size)
    else:
        fresh = embedder.encode([texts[j] for j in todo], batch_size=batch_size) if todo else None
        vectors = np.empty((len(texts), (fresh if fresh is not None else next(iter(known.values()))).shape[-1]),
                           dtype=np.float32)
        for j, key in enumerate(keys):
            if key in known:
                vectors[j] = known[key]
        if todo:
            vectors[todo] = fresh
    return vectors, [(keys[j], vectors[j]) for j in todo]


def source_keys(articles: Sequence[Article], preparation: Preparation) -> list[str]:
    """sha256 of everything `prepare` reads for each article (its id, title, excerpt and body, each with its
    length), every preparation setting and the preparing code itself (embed/prepare.py): equal keys mean equal
    prepared texts, so an article's content hash can be looked up instead of made again."""
    from . import prepare as preparing

    base = hashlib.sha256(json.dumps(asdict(preparation), sort_keys=True).encode())
    base.update(hashlib.sha256(Path(preparing.__file__).read_bytes()).digest())
    keys = []
    for article in articles:
        digest = base.copy()
        for value in (article.id, article.title, article.excerpt, article.body):
            data = value.encode("utf-8")
            digest.update(b"%d:" % len(data))
            digest.update(data)
        keys.append(digest.hexdigest())
    return keys


def cached_content_hashes(articles: Sequence[Article], preparation: Preparation, cache: VectorCache) -> list[str]:
    """The content hash of each article, from the cache where its source key is known (unchanged since the last
    run: 0.6 of the 0.7 CPU-s of hashing MDN); the others prepared, hashed and stored."""
    keys = source_keys(articles, preparation)
    known = cache.get_contents(keys)
    fresh = {key: content_hashes([article], preparation)[0] for key, article in zip(keys, articles)
             if key not in known}
    if fresh:
        cache.put_contents(fresh.items())
        known.update(fresh)
    return [known[key] for key in keys]


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
    windows: list | None = None,
    hashes: Sequence[str] | None = None,
    carried: Carried | None = None,
) -> tuple[np.ndarray, list[str], VectorizeStats]:
    """Unit-length vectors (n x dim, float32) for the articles, their content hashes, and counts. When `windows`
    is a list, it receives a `Windows` of every article's window vectors.

    Every window of an article is embedded (the head and each body window); the article vector is the head mixed
    with the mean of its spread windows (`prepare.combine`). Articles are embedded in rounds of `round_size`;
    each round is committed to the cache before the next starts, so an interrupted run loses at most one round.
    hashes: the articles' content hashes under `preparation` when they are known (computed where the corpus was
    read); only the articles to embed are then prepared here. carried: the index version being replaced (same
    model and preparation), whose vectors and window codes its content keeps (not read from the cache; `windows`
    then receives a carried.CarriedWindows).
    """
    if hashes is None and cache is None:
        prepared: dict[int, PreparedText] | list[PreparedText] = [prepare(a, preparation) for a in articles]
        hashes = [p.content_hash(preparation) for p in prepared]
    else:
        hashes = list(hashes) if hashes is not None else cached_content_hashes(articles, preparation, cache)
        prepared = {}
    model_key = embedder.fingerprint
    old_rows = carried.rows_of(hashes) if carried is not None else np.full(len(hashes), -1, dtype=np.int64)
    new_content = (old_rows < 0).tolist()  # per article: not held by the replaced version
    looked_up = [h for h, new in zip(hashes, new_content) if new]
    cached = cache.get_many(model_key, looked_up) if cache is not None else {}
    cached_windows = cache.get_windows(model_key, looked_up) if cache is not None else {}
    cached = {h: v for h, v in cached.items() if h in cached_windows}
    stats = VectorizeStats(reused=int((old_rows >= 0).sum()) + sum(1 for h in looked_up if h in cached))
    todo = [i for i, (h, new) in enumerate(zip(hashes, new_content)) if new and h not in cached]
    if isinstance(prepared, dict):
        prepared.update((i, prepare(articles[i], preparation)) for i in todo)
    fresh: dict[str, np.ndarray] = {}
    fresh_windows: dict[str, np.ndarray] = {}
    if todo:
        from ..common.render import plural

        log.info("embedding %s (%d reused from cache)", plural(len(todo), "article"), stats.reused)
    with progress_bar(total=len(todo), desc="embedding", unit="article", enabled=progress) as bar:
        for start in range(0, len(todo), round_size):
            first = {}  # one article of each content
            for i in todo[start:start + round_size]:
                if hashes[i] not in fresh:
                    first.setdefault(hashes[i], i)
            rows = list(first.values())
            texts: list[str] = []
            spans: list[tuple[int, int]] = []
            for i in rows:
                spans.append((len(texts), len(texts) + len(prepared[i].all_texts)))
                texts.extend(prepared[i].all_texts)
            vectors, read = embed_texts(texts, embedder, cache, model_key, batch_size)
            done, blocks = [], []
            for i, (a, b) in zip(rows, spans):
                picked = a + 1 + np.asarray(prepared[i].picked, dtype=np.int64)
                vec = combine(vectors[a], vectors[picked], preparation)
                fresh[hashes[i]] = vec
                fresh_windows[hashes[i]] = vectors[a:b].astype(np.float16)
                done.append((hashes[i], vec))
                blocks.append((hashes[i], fresh_windows[hashes[i]]))
            if cache is not None:
                cache.put_many(model_key, done, blocks, read)
            stats.embedded += len(rows)
            stats.texts += len(read) if cache is not None else len(texts)
            bar.update(len(todo[start:start + round_size]))
    known = next(iter(fresh.values()), None)
    if known is None:
        known = next(iter(cached.values()), None)
    held = old_rows >= 0
    if known is None and held.any():
        known = carried.vectors[0]
    dim = known.shape[0] if known is not None else embedder.dimension  # no model load when all is cached
    matrix = np.zeros((len(articles), dim), dtype=np.float32)
    if held.any():
        matrix[held] = carried.vectors[old_rows[held]]
    for row in np.flatnonzero(~held).tolist():
        matrix[row] = cached[hashes[row]] if hashes[row] in cached else fresh[hashes[row]]
    if windows is not None:
        blocks = [cached_windows[h] if h in cached else fresh_windows[h] for h, new in zip(hashes, new_content) if new]
        windows.append(carried.windows(old_rows, blocks, dim) if carried is not None else Windows.stack(blocks, dim))
    return matrix, hashes, stats
