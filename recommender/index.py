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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .ann import VectorIndex, load_index
from .article import Article
from .embedder import Embedder, backend_from_manifest, get_embedder
from .manifest import IndexProblem, Manifest, read_manifest, verify_files
from .metadata import ArticleInfo, MetadataStore
from .prepare import Preparation, combine, prepare
from .topk import drop_rows

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
             verify: bool | str = True) -> "Index":
        """Open an index; refuse it if files are missing or corrupted, or if its text preparation differs.

        verify: True checks every file's size and modification time against the manifest and re-hashes any
        that changed; "full" re-hashes every file (sha256); False checks nothing."""
        folder = Path(folder) if folder is not None else default_index_dir()
        manifest = read_manifest(folder)
        if verify:
            verify_files(folder, manifest, full=verify == "full")
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
        info = self.store.by_id(ref)
        if info is None and "://" in ref:
            from .text import canonical_url, url_to_id

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
            embedder = get_embedder(spec, backend=backend_from_manifest(self.manifest.model))
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
            "embedding_backend": backend_from_manifest(self.manifest.model),
            "index_backend": self.manifest.backend,
            "preparation": self.manifest.preparation.get("key"),
            "built_at": self.manifest.built_at,
            "size_bytes": size,
            "cache_bytes": cache.stat().st_size if cache.exists() else 0,
            **{key: value for key, value in self.manifest.stats.items() if key.startswith("ann_recall")},
        }


def check_model(manifest: Manifest, embedder: Embedder, folder: Path) -> None:
    recorded = manifest.model.get("fingerprint")
    if recorded != embedder.fingerprint:
        raise IndexProblem(
            f"{folder}: built with model {manifest.model.get('name')} ({recorded}), but the model given is "
            f"{embedder.name} ({embedder.fingerprint}); use the same model or rebuild the index"
        )

