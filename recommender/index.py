"""The index: build it from a corpus, open it, and ask it for related articles.

    from recommender import Index, build_index
    report = build_index("demo/", "demo-index")
    index = Index.open("demo-index")
    for hit in index.related("example-news.com/some-story", k=5):
        print(hit.score, hit.title, hit.url)

Asking by id or URL reads the stored vectors only; the model is loaded only to embed new text.
"""

from __future__ import annotations

import difflib
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from .ann import FlatIndex, VectorIndex, load_index
from .article import Article, Corpus, Problem
from .atomic import atomic_path
from .embedder import DEFAULT_MODEL, Embedder, get_embedder
from .lock import exclusive_lock
from .manifest import IndexProblem, Manifest, file_entry, read_manifest, verify_files, write_manifest
from .metadata import ArticleInfo, MetadataStore, write_metadata
from .prepare import Preparation, combine, prepare
from .topk import drop_rows
from .vector_cache import VectorCache
from .vectorize import VectorizeStats, vectorize

log = logging.getLogger(__name__)

INDEX_ENV = "RECOMMENDER_INDEX"
DEFAULT_INDEX_DIR = "recommender-index"
CACHE_FILE = Path("cache") / "vectors.sqlite"


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


class UnknownArticle(LookupError):
    """An id or URL that is not in the index; carries the closest ids as suggestions."""

    def __init__(self, ref: str, suggestions: Sequence[str]):
        hint = f"; closest ids: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"no article {ref!r} in the index{hint}")
        self.ref = ref
        self.suggestions = list(suggestions)


@dataclass
class Related:
    """One suggested link."""

    id: str
    score: float
    title: str
    url: str | None
    published: str | None
    source: str | None
    kind: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BuildReport:
    count: int
    problems: list[Problem] = field(default_factory=list)
    vectors: VectorizeStats = field(default_factory=VectorizeStats)
    seconds: dict[str, float] = field(default_factory=dict)


class Index:
    """An opened index folder: manifest, vector index and metadata, checked against each other."""

    def __init__(self, folder: Path, manifest: Manifest, vectors: VectorIndex, store: MetadataStore):
        self.folder = folder
        self.manifest = manifest
        self.vectors = vectors
        self.store = store
        self._embedder: Embedder | None = None

    # --- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path | None = None, *, preparation: Preparation | None = None,
             verify: bool = True) -> "Index":
        """Open an index; refuse it if files are missing or corrupted, or if its text preparation differs."""
        folder = Path(folder) if folder is not None else default_index_dir()
        manifest = read_manifest(folder)
        if verify:
            verify_files(folder, manifest)
        expected = (preparation or Preparation()).key
        recorded = manifest.preparation.get("key")
        if recorded != expected:
            raise IndexProblem(
                f"{folder}: built with text preparation {recorded}, this version uses {expected}; "
                "rebuild it with `recommender index`"
            )
        try:
            vectors = load_index(manifest.backend, folder / manifest.files["vectors"].name)
            store = MetadataStore(folder / manifest.files["metadata"].name)
            count = store.count()
        except (KeyError, RuntimeError, ValueError, OSError) as exc:
            raise IndexProblem(f"{folder}: cannot read the index ({exc}); rebuild it") from None
        except Exception as exc:  # sqlite3.DatabaseError and FAISS errors
            raise IndexProblem(f"{folder}: cannot read the index ({exc}); rebuild it") from None
        if not (vectors.count == count == manifest.count) or vectors.dimension != manifest.dimension:
            raise IndexProblem(
                f"{folder}: index holds {vectors.count} vectors of dimension {vectors.dimension} and {count} "
                f"articles, manifest says {manifest.count} x {manifest.dimension}; rebuild it"
            )
        return cls(folder, manifest, vectors, store)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- lookups ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.manifest.count

    def get(self, ref: str) -> ArticleInfo:
        """The article for an id or a URL (any variant that canonicalises to a stored URL)."""
        from .text import canonical_url, url_to_id

        info = self.store.by_id(ref)
        if info is None and "://" in ref:
            canon = canonical_url(ref)
            if canon:
                info = self.store.by_url(canon) or self.store.by_id(url_to_id(canon))
        if info is None:
            stripped = ref.strip().strip("/")
            info = self.store.by_id(stripped) if stripped != ref else None
        if info is None:
            raise UnknownArticle(ref, difflib.get_close_matches(ref, self.store.ids(), n=5, cutoff=0.5))
        return info

    def has(self, ref: str) -> bool:
        try:
            self.get(ref)
            return True
        except UnknownArticle:
            return False

    def vector_of(self, ref: str) -> np.ndarray:
        return self.vectors.vector(self.get(ref).row)

    # --- queries ------------------------------------------------------------------------------------

    def related(self, ref: str, k: int = 10) -> list[Related]:
        """The k articles most related to a stored article (by id or URL), never the article itself."""
        info = self.get(ref)
        return self.nearest(self.vectors.vector(info.row), k, exclude_rows={info.row})

    def related_to_article(self, article: Article, k: int = 10) -> list[Related]:
        """Related articles for an article that may not be in the index (embedded with the index's model)."""
        if self.has(article.id):
            return self.related(article.id, k)
        prepared = prepare(article, self.preparation)
        vectors = self.embedder().encode(prepared.texts)
        return self.nearest(combine(vectors[0], vectors[1:], self.preparation), k)

    def search(self, text: str, k: int = 10) -> list[Related]:
        """Articles closest in meaning to a free-text query."""
        if not text.strip():
            raise ValueError("empty search text")
        return self.nearest(self.embedder().encode([text])[0], k)

    def nearest(self, vector: np.ndarray, k: int, exclude_rows: set[int] | None = None) -> list[Related]:
        excluded = exclude_rows or set()
        scores, rows = self.vectors.search(vector[None, :], k + len(excluded))
        hits = drop_rows(scores[0], rows[0], excluded, k)
        infos = self.store.by_rows([row for row, _ in hits])
        return [
            Related(id=i.id, score=round(score, 6), title=i.title, url=i.url, published=i.published,
                    source=i.source, kind=i.kind)
            for row, score in hits
            for i in [infos[row]]
        ]

    # --- model --------------------------------------------------------------------------------------

    @property
    def preparation(self) -> Preparation:
        return Preparation.from_dict(self.manifest.preparation)

    def embedder(self, model: str | None = None) -> Embedder:
        """The model that made this index's vectors, loaded on first use; a different model is refused."""
        if self._embedder is None:
            spec = model if model is not None else self.manifest.model.get("spec")
            precision = self.manifest.model.get("precision", "fp32")
            embedder = get_embedder(spec, precision=precision)
            check_model(self.manifest, embedder, self.folder)
            self._embedder = embedder
        return self._embedder

    def info(self) -> dict:
        size = sum((self.folder / e.name).stat().st_size for e in self.manifest.files.values())
        cache = self.folder / CACHE_FILE
        return {
            "index": str(self.folder),
            "articles": self.manifest.count,
            "curated_lists": len(self.store.curated()),
            "model": self.manifest.model.get("name"),
            "model_fingerprint": self.manifest.model.get("fingerprint"),
            "dimension": self.manifest.dimension,
            "backend": self.manifest.backend,
            "preparation": self.manifest.preparation.get("key"),
            "built_at": self.manifest.built_at,
            "size_bytes": size,
            "cache_bytes": cache.stat().st_size if cache.exists() else 0,
        }


def check_model(manifest: Manifest, embedder: Embedder, folder: Path) -> None:
    recorded = manifest.model.get("fingerprint")
    if recorded != embedder.fingerprint:
        raise IndexProblem(
            f"{folder}: built with model {manifest.model.get('name')} ({recorded}), but the model given is "
            f"{embedder.name} ({embedder.fingerprint}); use the same model or rebuild the index"
        )


# --- building -------------------------------------------------------------------------------------


def build_index(
    source: str | Path | Corpus,
    folder: str | Path | None = None,
    *,
    model: str | None = None,
    precision: str = "fp32",
    embedder: Embedder | None = None,
    preparation: Preparation = Preparation(),
    batch_size: int = 32,
    progress: bool = True,
) -> BuildReport:
    """Read a corpus, embed it (reusing cached vectors), and write a new index version atomically."""
    from .ingest import read_corpus

    folder = Path(folder) if folder is not None else default_index_dir()
    timer = time.perf_counter()
    corpus = source if isinstance(source, Corpus) else read_corpus(source)
    for problem in corpus.problems:
        log.warning("skipped %s", problem)
    if not corpus.articles:
        raise ValueError(f"{source}: no usable articles found")
    seconds = {"read": time.perf_counter() - timer}
    embedder = embedder or get_embedder(model, precision=precision)
    with exclusive_lock(folder):
        with VectorCache(folder / CACHE_FILE) as cache:
            timer = time.perf_counter()
            vectors, hashes, stats = vectorize(corpus.articles, embedder, preparation, cache,
                                               batch_size=batch_size, progress=progress)
            seconds["embed"] = time.perf_counter() - timer
        timer = time.perf_counter()
        write_index(folder, corpus.articles, vectors, hashes, embedder, preparation,
                    model_spec=model, precision=precision, stats={"problems": len(corpus.problems)})
        seconds["index"] = time.perf_counter() - timer
    log.info("indexed %d articles in %s (%d embedded, %d reused)", len(corpus.articles), folder,
             stats.embedded, stats.reused)
    return BuildReport(count=len(corpus.articles), problems=corpus.problems, vectors=stats, seconds=seconds)


def write_index(folder: Path, articles: Sequence[Article], vectors: np.ndarray, hashes: Sequence[str],
                embedder: Embedder, preparation: Preparation, *, model_spec: str | None = None,
                precision: str = "fp32", stats: dict | None = None) -> Manifest:
    """Write data files under fresh names, then the manifest that names them (the commit), then tidy up."""
    folder.mkdir(parents=True, exist_ok=True)
    token = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    ann = FlatIndex.build(vectors)
    with atomic_path(folder / f"vectors-{token}.faiss") as tmp:
        ann.save(tmp)
    with atomic_path(folder / f"articles-{token}.sqlite") as tmp:
        tmp.unlink()
        write_metadata(tmp, articles, hashes)
    manifest = Manifest(
        model={"name": embedder.name, "spec": model_spec if model_spec != DEFAULT_MODEL else None,
               "fingerprint": embedder.fingerprint, "precision": precision},
        preparation=preparation.to_dict(),
        count=len(articles),
        dimension=int(vectors.shape[1]),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        backend=ann.backend,
        files={"vectors": file_entry(folder / f"vectors-{token}.faiss"),
               "metadata": file_entry(folder / f"articles-{token}.sqlite")},
        stats=stats or {},
    )
    write_manifest(folder, manifest)
    remove_stale_files(folder, manifest)
    return manifest


def remove_stale_files(folder: Path, manifest: Manifest) -> None:
    """Delete data files of older index versions (and temporaries of killed runs) once the manifest moved on."""
    live = {entry.name for entry in manifest.files.values()}
    for path in list(folder.glob("vectors-*.faiss")) + list(folder.glob("articles-*.sqlite")) + list(
        folder.glob(".*.tmp")
    ):
        if path.name not in live:
            path.unlink(missing_ok=True)
