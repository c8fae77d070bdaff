"""An opened index folder's data: the files one index version is made of, checked against each other, each read
on first use and kept once. The questions asked of it (related links, search, explanations) are the query facade's,
`recommender.rank.index.Index`, which holds one of these as `data`; the modules that read files only (explain,
storedlists, learneddata, overrides) are given this object.

    data = IndexData.open("demo-index")
    data.get("some-id").row, data.lexical, data.rule_columns(), data.article_features()

What is read on first use, one attribute each (declared in `__init__`): the FAISS index (`vectors`), the lexical
index (`lexical`), the link rules' columns (`rule_columns`), the learned signals' article features
(`article_features`), the learned ranking's files (`learned_files`) and link graphs (`link_graphs`), the
nearest-window index (`window_ann`), the model (`embedder`) and the count of curated lists (`curated_lists`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..embed.embedder import Embedder, backend_from_manifest, get_embedder
from ..embed.prepare import Preparation
from ..store.ann import VectorIndex, load_index
from ..store.manifest import IndexProblem, Manifest, check_model, check_vectors, read_manifest, verify_files
from ..store.metadata import ArticleInfo, MetadataStore
from .querydata import QueryData
from .results import UnknownArticle, closest_ids

INDEX_ENV = "RECOMMENDER_INDEX"
DEFAULT_INDEX_DIR = "recommender-index"
CACHE_FILE = Path("cache") / "vectors.sqlite"


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


class IndexData:
    """One opened index version: manifest, metadata and the precomputed query arrays, open now; every other file
    read on first use (a query by id may never need the FAISS index or the model)."""

    def __init__(self, folder: Path, manifest: Manifest, store: MetadataStore, vectors: VectorIndex | None = None):
        self.folder = folder
        self.manifest = manifest
        self.store = store
        self.query_data = QueryData(folder, manifest)  # arrays precomputed at build (recommender.rank.querydata)
        # read on first use, one each
        self._vectors = vectors  # the FAISS index (vectors)
        self._lexical = None  # the lexical index (lexical)
        self._rule_columns = None  # what the link rules read of every article (rule_columns)
        self._article_features = None  # what the learned ranking's signals read of every article (article_features)
        self._learned_files = None  # the learned: files of this version (learned_files)
        self._link_graphs: tuple | None = None  # (key, graphs) of the learned ranking (link_graphs)
        self._window_ann = None  # the nearest-window index (window_ann)
        self._embedder: Embedder | None = None  # the model (embedder)
        self._curated_lists: int | None = None  # how many curated lists (curated_lists)

    @classmethod
    def open(cls, folder: str | Path | None = None, *, preparation: Preparation | None = None,
             verify: bool | str = True) -> "IndexData":
        """Open an index; refuse it if files are missing or corrupted, or if its text preparation differs from
        `preparation` (None: this version's for the model the index records, Preparation.for_model).

        verify: True checks every file's size and modification time against the manifest and re-hashes any
        that changed; "full" re-hashes every file (sha256); False checks nothing."""
        folder = Path(folder) if folder is not None else default_index_dir()
        manifest = read_manifest(folder)
        if verify:
            verify_files(folder, manifest, full=verify == "full")
        expected = (preparation or Preparation.for_model(manifest.model.get("max_tokens"))).key
        recorded = manifest.preparation.get("key")
        if recorded != expected:
            raise IndexProblem(
                f"{folder}: built with text preparation {recorded}, this version uses {expected}; "
                "rebuild it with `recommender index`"
            )
        mapped = QueryData(folder, manifest).vector_shape()  # then FAISS is read only when a query needs it
        try:
            store = MetadataStore(folder / manifest.files["metadata"].name)
            # verified, the metadata file is the one written with the manifest's count; else counted (SQLite's
            # COUNT(*) scans an index of every row: 8.5 ms CPU at 80,000 articles, about 0.1 s at 1M)
            count = manifest.count if verify else store.count()
            vectors = None if mapped else load_index(manifest.backend, folder / manifest.files["vectors"].name)
            shape = mapped or (vectors.count, vectors.dimension)
        except (KeyError, RuntimeError, ValueError, OSError) as exc:
            raise IndexProblem(f"{folder}: cannot read the index ({exc}); rebuild it") from None
        except Exception as exc:  # sqlite3.DatabaseError and FAISS errors
            raise IndexProblem(f"{folder}: cannot read the index ({exc}); rebuild it") from None
        check_vectors(folder, manifest, shape, count)
        return cls(folder, manifest, store, vectors)

    def close(self) -> None:
        self.store.close()

    def __len__(self) -> int:
        return self.manifest.count

    # --- lookups ------------------------------------------------------------------------------------

    def get(self, ref: str) -> ArticleInfo:
        """The article for an id or a URL (any variant that canonicalises to a stored URL)."""
        info = self.store.by_id(ref)
        if info is None and ("://" in ref or "?" in ref):  # a URL, or an id whose query is in another order
            from ..ingest.text import canonical_url, url_to_id

            canon = canonical_url(ref if "://" in ref else "https://" + ref)
            if canon:
                info = self.store.by_url(canon) or self.store.by_id(url_to_id(canon))
        if info is None:
            stripped = ref.strip().strip("/")
            info = self.store.by_id(stripped) if stripped != ref else None
        if info is None:
            raise UnknownArticle(ref, closest_ids(ref, self.store.ids()))
        return info

    def has(self, ref: str) -> bool:
        try:
            self.get(ref)
            return True
        except UnknownArticle:
            return False

    def vector_of(self, ref: str) -> np.ndarray:
        return self.vectors.vector(self.get(ref).row)

    # --- files read on first use --------------------------------------------------------------------

    @property
    def vectors(self) -> VectorIndex:
        """The FAISS index (read on first use when the index has mapped vectors)."""
        if self._vectors is None:
            try:
                vectors = load_index(self.manifest.backend, self.folder / self.manifest.files["vectors"].name)
            except Exception as exc:  # noqa: BLE001 - FAISS errors
                raise IndexProblem(f"{self.folder}: cannot read the vector index ({exc}); rebuild it") from None
            check_vectors(self.folder, self.manifest, (vectors.count, vectors.dimension), self.manifest.count)
            self._vectors = vectors
        return self._vectors

    @property
    def vectors_read(self) -> bool:
        """Whether the FAISS index was read (a query by id over mapped vectors never reads it)."""
        return self._vectors is not None

    @property
    def approximate(self) -> bool:
        """Whether the vector index is an approximate one (IVF: a large corpus), from the manifest alone."""
        from ..store.ann import BACKENDS

        return bool(getattr(BACKENDS.get(self.manifest.backend), "approximate", False))

    @property
    def lexical(self):
        """The stored lexical index (TF-IDF and mentions), or None for an index built before it existed."""
        if self._lexical is None and "lexical" in self.manifest.files:
            from ..store.lexindex import LexicalIndex

            try:
                # mapped, not read: at 1M articles the mention matrix is GBs (so are M + Mᵀ and the postings,
                # whose stored arrays stand for csr_arrays: the same arrays, not made again)
                self._lexical = LexicalIndex.load(self.folder / self.manifest.files["lexical"].name,
                                                  self.folder / self.manifest.files["lexicon"].name, mapped=True)
            except (OSError, ValueError, KeyError) as exc:
                raise IndexProblem(f"{self.folder}: cannot read the lexical index ({exc}); rebuild it") from None
            stored = self.query_data.lexical(lambda: self._lexical)
            if stored is not None:
                self._lexical.use_arrays(stored.csr_arrays())
        return self._lexical

    def rule_columns(self):
        """What the link rules read of every article (linking.RuleColumns): the stored arrays, else the metadata."""
        if self._rule_columns is None:
            from .linking import RuleColumns

            self._rule_columns = self.query_data.facts(self.store) or RuleColumns.from_infos(self.store.all(),
                                                                                              self.store.topics())
        return self._rule_columns

    def article_features(self):
        """What the learned ranking's signals read of every article (signals.ArticleFeatures: tags, authors, dates,
        paths, page types): the stored arrays, else the metadata."""
        if self._article_features is None:
            from .signals import ArticleFeatures

            self._article_features = self.query_data.site_facts() or ArticleFeatures.from_infos(self.store.all())
        return self._article_features

    def tagged(self) -> bool:
        """Whether any article has tags (the stored tag matrix says it without reading every article's topics)."""
        data = self.query_data
        if data.has("site_tags.indptr"):
            return bool(data.array("site_tags.indptr")[-1] > 0)
        return any(self.rule_columns().topics)

    @property
    def learned_files(self):
        """The `learned:` files of this version (rank.learneddata.LearnedFiles; their arrays mapped on first use)."""
        if self._learned_files is None:
            from .learneddata import LearnedFiles

            self._learned_files = LearnedFiles(self.folder, self.manifest)
        return self._learned_files

    def link_graphs(self, model, moments=None, vectors=None):
        """The link graphs a learned model's signals read (graph_signals.LinkGraphs), built once: mapped from the
        arrays stored with the model (rank.learneddata) when they stand, else built here; moments: the corpus's
        dense moments the query's ranker reads (rank.wiring.query_ranker); vectors: full-precision vectors to build
        from (the batch's) instead of the index's. None for a model that reads no graph (the shipped default,
        rank.default_model)."""
        if not getattr(model, "uses_graph", True):
            return None
        key = (model.curated, vectors is not None)
        if self._link_graphs is None or self._link_graphs[0] != key:
            from .learneddata import graph_for

            self._link_graphs = (key, graph_for(self, model, moments, vectors))
        return self._link_graphs[1]

    def window_scores(self, keep_copy: bool = False):
        """Window-level scores over the stored windows (rank.windows), or None without them."""
        from .windows import stored_window_scores

        return stored_window_scores(self.folder, self.manifest, keep_copy)

    def window_ann(self, approximate_only: bool = False):
        """The stored nearest-window index (store.windowann.WindowANN, memory-mapped), or None for an index
        built before it. approximate_only: only the index the ranker searches with, an approximate one above
        windowstage.EXACT_WINDOW_SEARCH stored windows; else None, the ranker searching the stored windows exactly
        (a query by id on such a site then reads no FAISS file)."""
        if approximate_only:
            from ..store.windowann import IVF
            from .windowstage import EXACT_WINDOW_SEARCH

            stats = self.manifest.stats
            if stats.get("window_ann") != IVF or (stats.get("windows") or 0) <= EXACT_WINDOW_SEARCH:
                return None
        if self._window_ann is None:
            from ..store.windowfiles import read_window_ann

            self._window_ann = read_window_ann(self.folder, self.manifest)
        return self._window_ann

    def overrides(self):
        """The editors' pins and blocks (rank.overrides.OverrideSet), read on each call: an editor may change them
        at any time."""
        from .overrides import load_overrides

        return load_overrides(self.folder)

    def curated_lists(self) -> int:
        """How many curated related lists the index holds (read once)."""
        if self._curated_lists is None:
            self._curated_lists = self.store.curated_count()
        return self._curated_lists

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
        """What `recommender info` shows: counts, model, backends, sizes (from the manifest; no matrix read)."""
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
            "lexical_terms": self.manifest.stats.get("lexical_terms"),  # recorded at build: info reads no matrix
            "mentions": self.manifest.stats.get("mentions"),
            "windows": self.manifest.stats.get("windows"),  # window vectors stored for the window-level score
            "overrides": len(self.overrides().items),
            "articles_with": self.store.field_counts(),
            **{key: value for key, value in self.manifest.stats.items() if key.startswith("ann_recall")},
        }
