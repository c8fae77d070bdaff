"""Building an index: read a corpus, embed only what changed, write a new index version atomically.

Every article's prepared text has a content hash (kept in the index metadata and as the key of the vector
cache), so a rebuild embeds only new or changed articles, and a model or preparation change re-embeds all.
Data files get fresh versioned names and the manifest that names them is written last (the commit): a build
killed at any point leaves the previous index readable, and the vectors embedded so far stay in the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..store.ann import build_for_size, measure_recall
from ..ingest.article import Article, Corpus, Problem
from ..common.atomic import atomic_path
from ..common.errors import InputError
from ..common.clock import utc_now
from ..embed.embedder import DEFAULT_MODEL, Embedder, declared_language, declared_max_tokens, get_embedder, \
    preparation_for
from ..rank.indexdata import CACHE_FILE, default_index_dir
from ..store.lexindex import LexicalIndex
from ..store.lock import exclusive_lock
from ..store.manifest import IndexProblem, Manifest, file_entry, read_manifest, write_manifest
from ..store.metadata import MetadataStore, StoredTexts, write_metadata
from ..store.windowfiles import SEARCHED_EXACTLY, carried_from, write_window_ann, write_windows
from ..embed.prepare import Preparation
from ..embed.vector_cache import VectorCache
from ..embed.vectorize import VectorizeStats, vectorize

log = logging.getLogger(__name__)


@dataclass
class Changes:
    """How the corpus differs from the index it replaces (by article id and content hash)."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0

    def to_dict(self) -> dict:
        return {"added": self.added, "changed": self.changed, "unchanged": self.unchanged, "removed": self.removed}


@dataclass
class BuildReport:
    count: int
    problems: list[Problem] = field(default_factory=list)
    vectors: VectorizeStats = field(default_factory=VectorizeStats)
    changes: Changes = field(default_factory=Changes)
    rewritten: bool = True  # False when nothing changed and the existing index was kept as it is
    matrix: np.ndarray | None = field(default=None, repr=False)  # the full-precision vectors, in row order
    hashes: list[str] = field(default_factory=list, repr=False)  # each article's content hash, in row order
    seconds: dict[str, float] = field(default_factory=dict)
    ignored: int = 0  # files in the corpus folder that are not read as articles


def read_logged(source: str | Path, cache_path: str | Path | None = None) -> Corpus:
    """Read a corpus and log every skipped input (file, line, reason). With cache_path, raw input prepared at
    the last read is taken from that prepared-article cache (recommender.ingest.prepared_cache) instead of cleaned."""
    from ..ingest.reader import read_corpus

    if cache_path is None:
        corpus = read_corpus(source)
    else:
        from ..ingest.prepared_cache import PreparedCache

        with PreparedCache(cache_path) as cache:
            corpus = read_corpus(source, cache=cache)
            log.info("prepared articles: %d inputs reused, %d cleaned", cache.hits, cache.misses)
    log_corpus(corpus)
    return corpus


def log_corpus(corpus: Corpus) -> None:
    """Log every skipped input (file, line, reason) and the files not read."""
    for problem in corpus.problems:
        log.warning("%s %s", "warning:" if problem.kept else "skipped", problem)
    if corpus.ignored:
        from ..ingest.reader import read_suffixes
        from ..common.render import plural

        shown = ", ".join(corpus.ignored[:3]) + (", ..." if len(corpus.ignored) > 3 else "")
        log.info("ignored %s (README files, XML that is not a feed, and extensions other than %s are not read): %s",
                 plural(len(corpus.ignored), "file"), " ".join(sorted(read_suffixes())), shown)


def require_articles(corpus: Corpus, source: object) -> Corpus:
    if not corpus.articles:
        raise InputError(f"{source}: no usable articles found")
    return corpus


def build_index(
    source: str | Path | Corpus,
    folder: str | Path | None = None,
    *,
    model: str | None = None,
    backend: str = "auto",
    embedder: Embedder | None = None,
    preparation: Preparation | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> BuildReport:
    """Read a corpus, embed it (reusing cached vectors), and write a new index version atomically.

    Holds the index folder's lock; a second build or batch on the same folder is refused meanwhile."""
    folder = Path(folder) if folder is not None else default_index_dir()
    timer = time.perf_counter()
    corpus = require_articles(source if isinstance(source, Corpus) else read_logged(source), source)
    read_seconds = time.perf_counter() - timer
    with exclusive_lock(folder):
        report = update_index(folder, corpus, embedder or get_embedder(model, backend=backend),
                              preparation=preparation, model_spec=model,
                              batch_size=batch_size, progress=progress)
    report.seconds = {"read": read_seconds, **report.seconds}
    report.ignored = len(corpus.ignored)
    return report


def update_index(folder: Path, corpus: Corpus, embedder: Embedder, *, preparation: Preparation | None = None,
                 model_spec: str | None = None, batch_size: int = 32, round_size: int = 256,
                 progress: bool = True, refit_drift: float | None = None, hashes: Sequence[str] | None = None,
                 engine=None) -> BuildReport:
    """The build itself; the caller holds the folder's lock. refit_drift: the share of churn since the last
    lexical fit above which it is fitted again (None: LEXICAL_DRIFT; the batch passes [batch] refit_drift).
    hashes: the articles' content hashes when the reading computed them; engine: one other than the local
    engine (recommender.batch.engines) fits the lexical index in shards on its workers. preparation: None, the
    preparation for the embedder's model (windows as long as it reads: embed.embedder.preparation_for)."""
    preparation = preparation or preparation_for(embedder)
    seconds: dict[str, float] = {}
    timer = time.perf_counter()
    manifest = current_manifest(folder)
    previous = previous_state(folder, manifest, embedder, preparation)
    # what the replaced version holds for unchanged content: its vectors and window codes, not read from the cache
    carried = carried_from(folder, manifest, [content for _, content in previous] if previous else None)
    with VectorCache(folder / CACHE_FILE) as cache:
        windows: list = []
        vectors, hashes, stats = vectorize(corpus.articles, embedder, preparation, cache,
                                           batch_size=batch_size, round_size=round_size, progress=progress,
                                           windows=windows, hashes=hashes, carried=carried)
        seconds["embed"] = time.perf_counter() - timer
    timer = time.perf_counter()
    changes = compare(previous, corpus.articles, hashes)
    digest = corpus_digest(corpus.articles, hashes)
    rewritten = (previous is None or manifest.stats.get("corpus_digest") != digest
                 or "lexical" not in manifest.files  # an index from before the hybrid ranking
                 or "query:dense_mean" not in manifest.files  # or before the precomputed query data
                 or "windows" not in manifest.stats  # or before the stored windows
                 or "window_ann" not in manifest.stats)  # or before the nearest-window index
    if rewritten:
        frozen = frozen_lexical(folder, manifest, previous, changes,
                                LEXICAL_DRIFT if refit_drift is None else refit_drift)
        old_ann = manifest.files.get("window_ann") if previous is not None else None  # same model and preparation
        write_index(folder, corpus.articles, vectors, hashes, embedder, preparation, model_spec=model_spec,
                    stats={"problems": len(corpus.problems), "corpus_digest": digest}, frozen_lexical=frozen,
                    windows=windows[0], previous_window_ann=folder / old_ann.name if old_ann else None,
                    engine=engine)
    seconds["index"] = time.perf_counter() - timer
    from ..common.render import plural

    log.info("%s %s in %s (%d embedded, %d reused; %s)", "indexed" if rewritten else "kept",
             plural(len(corpus.articles), "article"), folder, stats.embedded, stats.reused,
             ", ".join(f"{k} {v}" for k, v in changes.to_dict().items()))
    return BuildReport(count=len(corpus.articles), problems=corpus.problems, vectors=stats, changes=changes,
                       rewritten=rewritten, seconds=seconds, matrix=vectors, hashes=list(hashes))


LEXICAL_DRIFT = 0.05  # refit the TF-IDF (new vocabulary and IDF) once this share of the corpus changed since
# its last fit (added + changed + removed); the policy's [batch] refit_drift default. Measured: docs/batch.md


def frozen_lexical(folder: Path, manifest: Manifest | None, previous: list[tuple[str, str]] | None,
                   changes: Changes, refit_drift: float = LEXICAL_DRIFT) -> tuple | None:
    """(previous lexical index, its ids, drift record, its titles or None) when the lexical index can be updated
    with its IDF frozen: a usable previous index, and added + changed + removed articles since its last full fit
    not above refit_drift of the corpus it was fitted on. None means a full fit."""
    if manifest is None or previous is None or "lexical" not in manifest.files or "lexicon" not in manifest.files:
        return None
    base = dict(manifest.stats.get("lexical_base") or {"count": manifest.count, "churn": 0})
    base["churn"] = int(base["churn"]) + changes.added + changes.changed + changes.removed
    if base["churn"] > refit_drift * max(1, int(base["count"])):
        log.info("lexical index: %d of %d articles changed since its last fit: fitting it again",
                 base["churn"], base["count"])
        return None
    try:
        old = LexicalIndex.load(folder / manifest.files["lexical"].name, folder / manifest.files["lexicon"].name,
                                found=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable old lexical index is simply fitted again
        log.warning("%s: previous lexical index unreadable (%s); fitting it again", folder, exc)
        return None
    if old.doc_hashes is None or old.name_weights is None or not old.vocabulary or old.count != len(previous):
        return None
    try:  # the mention rows of texts that cannot have changed are then copied (store.mentionreuse)
        with MetadataStore(folder / manifest.files["metadata"].name) as store:
            titles = store.titles()
    except Exception:  # noqa: BLE001 - without them every mention row is made again
        titles = None
    return old, [article_id for article_id, _ in previous], base, titles if len(titles or ()) == old.count else None


def current_manifest(folder: Path) -> Manifest | None:
    """The manifest of the index being replaced, or None if there is none (or it is unreadable)."""
    try:
        return read_manifest(folder)
    except IndexProblem:
        return None


def previous_state(folder: Path, manifest: Manifest | None, embedder: Embedder,
                   preparation: Preparation) -> list[tuple[str, str]] | None:
    """(id, content hash) of the current index in row order, or None if there is no usable index made with
    the same model and preparation (then everything counts as new)."""
    if manifest is None:
        return None
    if (manifest.model.get("fingerprint") != embedder.fingerprint
            or manifest.preparation.get("key") != preparation.key):
        return None
    entry = manifest.files.get("metadata")
    if entry is None or not (folder / entry.name).exists():
        return None
    try:
        with MetadataStore(folder / entry.name) as store:
            return store.hashes()
    except Exception as exc:  # noqa: BLE001 - a damaged old index is simply replaced
        log.warning("%s: previous index unreadable (%s); rebuilding it", folder, exc)
        return None


def corpus_digest(articles: Sequence[Article], hashes: Sequence[str]) -> str:
    """sha256 over every article's fields and content hash, in order: equal digests mean an identical index."""
    digest = hashlib.sha256()
    names = [f.name for f in fields(Article)]
    for article, content in zip(articles, hashes):
        # the fields as they are (str, lists of str, None, bool): the JSON of asdict's deep copy, without the copy
        record = {name: getattr(article, name) for name in names}
        digest.update(json.dumps([record, content], sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def compare(previous: list[tuple[str, str]] | None, articles: Sequence[Article], hashes: Sequence[str]) -> Changes:
    old = dict(previous or [])
    changes = Changes()
    for article, digest in zip(articles, hashes):
        if article.id not in old:
            changes.added += 1
        elif old[article.id] != digest:
            changes.changed += 1
        else:
            changes.unchanged += 1
    changes.removed = len(set(old) - {a.id for a in articles})
    return changes


def write_index(folder: Path, articles: Sequence[Article], vectors: np.ndarray, hashes: Sequence[str],
                embedder: Embedder, preparation: Preparation, *, model_spec: str | None = None,
                stats: dict | None = None,
                frozen_lexical: tuple | None = None, windows=None,
                previous_window_ann: Path | None = None, engine=None,
                release: Callable[[], object] | None = None) -> Manifest:
    """Write data files under fresh names, then the manifest that names them (the commit), then tidy up.
    previous_window_ann: the replaced version's window index (same model), whose IVF training may be reused;
    engine: fits the lexical index in shards on its workers (the Ray engine), else in this process.
    Once the metadata is written, what follows reads the articles back from it (their texts a row at a time), so
    `release` (called then) lets the caller drop its articles: at 1M articles their text is GBs."""
    folder.mkdir(parents=True, exist_ok=True)
    token = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    ann = build_for_size(vectors)
    stats = dict(stats or {})
    if getattr(ann, "approximate", False):  # how much the approximate index loses against exact search
        timer = time.perf_counter()
        stats.update(measure_recall(ann, vectors), ann_recall_seconds=round(time.perf_counter() - timer, 1))
        log.info("approximate index %s: recall@10 %.4f (%.4f re-scored) on %d queries", ann.backend,
                 stats["ann_recall@10"], stats["ann_recall@10_rescored"], stats["ann_recall_queries"])
    with atomic_path(folder / f"vectors-{token}.faiss") as tmp:
        ann.save(tmp)
    log.debug("article index %s written", ann.backend)  # each phase's end (scripts/bench_scale.py logs them)
    metadata = folder / f"articles-{token}.sqlite"
    with atomic_path(metadata) as tmp:
        tmp.unlink()
        write_metadata(tmp, articles, hashes)
    count = len(articles)
    del articles  # from here on read back from the metadata
    log.debug("metadata written")
    if release is not None:
        release()
    # the windows first, while the build holds no lexical arrays yet: the peaks of the two do not add up
    window_files = {}
    if windows is not None:  # every window, and the nearest-window index over them when a search reads it
        from ..rank import windowstage

        timer = time.perf_counter()
        window_files = write_windows(folder, token, windows)
        ann_files, ann_stats = write_window_ann(folder, token, window_files, previous_window_ann) \
            if int(windows.offsets[-1]) > windowstage.EXACT_WINDOW_SEARCH else ({}, {"window_ann": SEARCHED_EXACTLY})
        window_files.update(ann_files)
        stats.update(ann_stats, window_ann_seconds=round(time.perf_counter() - timer, 1))
        for key in [key for key in ann_stats if key.startswith("window_ann_recall@")]:
            log.info("window index %s: %s %.4f at nprobe %d on %d queries", ann_stats["window_ann"], key[11:],
                     ann_stats[key], ann_stats["window_ann_nprobe"], ann_stats["window_ann_recall_queries"])
    stats["windows"] = int(windows.offsets[-1]) if window_files else 0
    log.debug("windows and their index written")
    timer = time.perf_counter()
    with MetadataStore(metadata) as store:
        ids = store.ids()
    rows = StoredTexts(metadata)
    try:
        if frozen_lexical is not None:  # IDF and vocabulary of the last fit; only new and changed rows transformed
            old, old_ids, base, old_titles = frozen_lexical
            lexical, transformed = old.updated(old_ids, ids, rows, old_titles)
            stats.update(lexical_update="incremental", lexical_transformed=transformed, lexical_base=base)
        else:
            if engine is not None and engine.name != "local":  # the same index, fitted in shards on its workers
                from ..store.lexshards import build_sharded, shard_count

                lexical = build_sharded(ids, rows, engine.map_shards, shard_count(len(ids), engine.workers()),
                                        language=declared_language(embedder))
            else:
                lexical = LexicalIndex.build(ids, rows, language=declared_language(embedder))
            stats.update(lexical_update="full", lexical_transformed=len(ids),
                         lexical_base={"count": len(ids), "churn": 0})
    finally:
        rows.close()
    matrices = folder / f"lexical-{token}.npz"
    with atomic_path(matrices) as tmp, atomic_path(folder / f"lexicon-{token}.json") as lexicon:
        lexical.save(tmp, lexicon)
    log.info("lexical index (%s): %d terms, %d mentions (%.1f s)", stats["lexical_update"],
             len(lexical.vocabulary), lexical.mentions.nnz, time.perf_counter() - timer)
    stats.update(lexical_terms=len(lexical.vocabulary), mentions=int(lexical.mentions.nnz))
    lexical.found = None  # stored for the next update; nothing below reads it (at 1M articles: GBs)
    lexical.map_mentions(matrices)  # M read from its file from here on, not held (at 1M articles: 4.5 GB)
    log.debug("lexical index written")
    timer = time.perf_counter()
    from ..rank.querydata import write_query_data  # what a query by id maps instead of rebuilding
    from ..rank.learneddata import for_new_version  # a stored learned ranking's arrays, made again for it
    from ..rank.corpusstats import dense_moments_of
    from ..store.mentionmatrix import transpose

    # the corpus moments from the index's vectors (an approximate index's decoded a block at a time), once
    rows_of = ann.rows if getattr(ann, "approximate", False) else (lambda start, stop: vectors[start:stop])
    moments = dense_moments_of(rows_of, count, int(vectors.shape[1]))
    turned_files = folder / f".mentions_t-{token}"  # Mᵀ, made once for the query data and the learned arrays
    try:
        turned = transpose(lexical.mentions, turned_files)
        log.debug("Mᵀ made (%d entries)", turned.nnz)
        with MetadataStore(metadata) as store:
            infos = store.all(texts=False)
        query_files = write_query_data(folder, token, vectors, lexical, infos, ann, moments, turned, turned_files)
        del infos
        log.debug("query data written")
        learned_files, learned_stats = for_new_version(folder, rows_of, lexical, ids, moments, turned, turned_files,
                                                       query_turned="query:mentions_t_data" in query_files)
        del turned
    finally:
        for part in ("indptr", "indices", "data"):
            Path(f"{turned_files}_{part}").unlink(missing_ok=True)
    if learned_stats is not None:
        stats["learned_data"] = learned_stats
        log.debug("learned arrays written")
    stats["query_data_seconds"] = round(time.perf_counter() - timer, 2)
    max_tokens = declared_max_tokens(embedder)  # what the window length followed (Preparation.for_model)
    manifest = Manifest(
        model={"name": embedder.name, "spec": model_spec if model_spec != DEFAULT_MODEL else None,
               "fingerprint": embedder.fingerprint, "backend": getattr(embedder, "backend", "unknown"),
               **({"max_tokens": max_tokens} if max_tokens else {})},
        preparation=preparation.to_dict(),
        count=count,
        dimension=int(vectors.shape[1]),
        built_at=utc_now(),
        backend=ann.backend,
        files={"vectors": file_entry(folder / f"vectors-{token}.faiss"),
               "metadata": file_entry(folder / f"articles-{token}.sqlite"),
               "lexical": file_entry(folder / f"lexical-{token}.npz"),
               "lexicon": file_entry(folder / f"lexicon-{token}.json"), **query_files, **learned_files,
               **window_files},
        stats=stats,
    )
    write_manifest(folder, manifest)
    remove_stale_files(folder, manifest)
    return manifest


def remove_stale_files(folder: Path, manifest: Manifest) -> None:
    """Delete data files of older index versions (and temporaries of killed runs) once the manifest moved on."""
    live = {entry.name for entry in manifest.files.values()}
    patterns = ("vectors-*.faiss", "articles-*.sqlite", "lexical-*.npz", "lexicon-*.json", "query-*.npy",
                "learned-*.npy", "windows-*.npy", "windowann-*.faiss", ".*.tmp", ".mentions_t-*")
    for path in [p for pattern in patterns for p in folder.glob(pattern)]:
        if path.name not in live:
            path.unlink(missing_ok=True)
