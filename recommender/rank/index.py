"""The index: build it from a corpus, open it, and ask it for related articles.

    from recommender import Index, build_index
    report = build_index("demo/", "demo-index")
    index = Index.open("demo-index")
    for hit in index.related("example-news.com/some-story", k=5):
        print(hit.score, hit.title, hit.url)

Asking by id or URL reads the stored vectors only; the model is loaded only to embed new text.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..common.errors import InputError
from ..store.ann import VectorIndex, load_index
from ..ingest.article import Article
from ..embed.embedder import Embedder, backend_from_manifest, get_embedder
from ..store.manifest import IndexProblem, Manifest, check_model, check_vectors, read_manifest, verify_files
from ..store.metadata import ArticleInfo, MetadataStore
from .policy import Policy
from ..embed.prepare import Preparation, combine, prepare
from .querydata import QueryData
from .results import Related, UnknownArticle, closest_ids  # noqa: F401 - importable from here, as they always were
from .signaltable import WEIGHTED_PARTS
from .topk import drop_rows

log = logging.getLogger(__name__)

INDEX_ENV = "RECOMMENDER_INDEX"
DEFAULT_INDEX_DIR = "recommender-index"
CACHE_FILE = Path("cache") / "vectors.sqlite"


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


class Index:
    """An opened index folder: manifest, vector index and metadata, checked against each other."""

    def __init__(self, folder: Path, manifest: Manifest, vectors: VectorIndex, store: MetadataStore):
        self.folder = folder
        self.manifest = manifest
        self._vectors = vectors  # None: the FAISS index is read on first use (a query by id may never need it)
        self.store = store
        self._embedder: Embedder | None = None
        self._lexical = None
        self._facts = None
        self._site_facts = None  # what the learned ranking's signals read of every article (site_facts)
        self._graph_facts: tuple | None = None  # (model key, link graphs) of the learned ranking (graph_facts)
        self._rankers: dict = {}
        self._curated_lists: int | None = None  # the curated lists the index holds (curated_lists)
        self._window_ann = None  # the stored nearest-window index (window_ann), read on first use
        self.learned_files = None  # the learned: files of this version (rank.learneddata.LearnedFiles), read there
        self.query_data = QueryData(folder, manifest)  # arrays precomputed at build (recommender.rank.querydata)

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
        mapped = QueryData(folder, manifest).vector_shape()  # then FAISS is read only when a query needs it
        try:
            store = MetadataStore(folder / manifest.files["metadata"].name)
            count = store.count()
            vectors = None if mapped else load_index(manifest.backend, folder / manifest.files["vectors"].name)
            shape = mapped or (vectors.count, vectors.dimension)
        except (KeyError, RuntimeError, ValueError, OSError) as exc:
            raise IndexProblem(f"{folder}: cannot read the index ({exc}); rebuild it") from None
        except Exception as exc:  # sqlite3.DatabaseError and FAISS errors
            raise IndexProblem(f"{folder}: cannot read the index ({exc}); rebuild it") from None
        check_vectors(folder, manifest, shape, count)
        return cls(folder, manifest, vectors, store)

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

    # --- queries ------------------------------------------------------------------------------------

    def related(self, ref: str, k: int | None = None, *, policy: Policy | None = None, overrides: bool = True,
                explain: bool = False) -> list[Related]:
        """The articles most related to a stored article (by id or URL), under the link policy (hybrid score,
        rules, duplicates, diversity) and the editorial overrides; never the article itself. Always computed,
        with each link's score `parts` (related_answer may read the last batch's stored list instead)."""
        return self.related_answer(ref, k, policy=policy, overrides=overrides, explain=explain, stored=False)[0]

    def related_answer(self, ref: str, k: int | None = None, *, policy: Policy | None = None, overrides: bool = True,
                       explain: bool = False, stored: bool = True) -> tuple[list[Related], str]:
        """(related, "stored-list" or "computed"): the last batch's list when it stands (recommender.rank.storedlists;
        the same links and scores, without `parts`), else computed."""
        info = self.get(ref)
        policy = self._policy(policy, k)
        if stored and not explain:
            from .storedlists import stored_links

            items = stored_links(self, info.row, policy, overrides)
            if items is not None:
                return self.related_items(items), "stored-list"
        cand = self.ranker(policy).score_rows(np.array([info.row]))[0]
        return self._links(cand, policy, overrides, explain), "computed"

    def related_to_article(self, article: Article, k: int | None = None, *, policy: Policy | None = None,
                           explain: bool = False) -> list[Related]:
        """Related articles for an article that may not be in the index (embedded with the index's model)."""
        if self.has(article.id):
            return self.related(article.id, k, policy=policy, explain=explain)
        prepared = prepare(article, self.preparation)
        vectors = self.embedder().encode(prepared.all_texts)  # the head and every window, as the index has them
        vector = combine(vectors[0], vectors[1 + np.asarray(prepared.picked, dtype=np.int64)], self.preparation)
        from ..store.lexical import lexical_document

        language = self.lexical.language if self.lexical is not None else None
        return self._text_links(vector, lexical_document(article.title, article.body or article.excerpt, language),
                                self._policy(policy, k), explain, windows=vectors)

    def search(self, text: str, k: int | None = None, *, policy: Policy | None = None,
               explain: bool = False) -> list[Related]:
        """Articles closest to a free-text query (embedding and words, under the policy's weights)."""
        if not text.strip():
            raise InputError("empty search text")
        vectors = self.embedder().encode([text])
        return self._text_links(vectors[0], text, self._policy(policy, k), explain, windows=vectors)

    def nearest(self, vector: np.ndarray, k: int, exclude_rows: set[int] | None = None) -> list[Related]:
        """The k nearest stored vectors by cosine alone (no lexical part, no policy)."""
        excluded = exclude_rows or set()
        scores, rows = self.vectors.search(vector[None, :], k + len(excluded))
        hits = drop_rows(scores[0], rows[0], excluded, k)
        return self.related_items([(row, score, False, None) for row, score in hits])

    # --- hybrid ranking -----------------------------------------------------------------------------

    @property
    def lexical(self):
        """The stored lexical index (TF-IDF and mentions), or None for an index built before it existed."""
        if self._lexical is None and "lexical" in self.manifest.files:
            from ..store.lexindex import LexicalIndex

            try:
                self._lexical = LexicalIndex.load(self.folder / self.manifest.files["lexical"].name,
                                                  self.folder / self.manifest.files["lexicon"].name)
            except (OSError, ValueError, KeyError) as exc:
                raise IndexProblem(f"{self.folder}: cannot read the lexical index ({exc}); rebuild it") from None
        return self._lexical

    def facts(self):
        if self._facts is None:
            from .linking import RuleColumns

            self._facts = self.query_data.facts(self.store) or RuleColumns.from_infos(self.store.all(),
                                                                                       self.store.topics())
        return self._facts

    def site_facts(self):
        """Per-article facts the learned ranking's signals read (tags, authors, dates, paths, page types)."""
        if self._site_facts is None:
            from .signals import ArticleFeatures

            self._site_facts = self.query_data.site_facts() or ArticleFeatures.from_infos(self.store.all())
        return self._site_facts

    def tag_pool(self):
        """The shared-tag candidate pool (signals.tag_pool) when any article has tags, else None."""
        from .wiring import shared_tag_pool

        data = self.query_data  # the stored tag matrix says it without reading every article's topics
        tagged = data.array("site_tags.indptr")[-1] > 0 if data.has("site_tags.indptr") else any(self.facts().topics)
        return shared_tag_pool(self.site_facts(), tagged=True) if tagged else None

    def graph_facts(self, model, ranker=None, vectors=None):
        """The link-graph facts a learned model's signals read (recommender.rank.graph_signals), built once:
        mapped from the arrays stored with the model (recommender.rank.learneddata) when they stand, else built here.
        vectors: full-precision vectors to build from (the batch's) instead of the index's. None for a model that
        reads no graph (the shipped default, recommender.rank.default_model)."""
        if not getattr(model, "uses_graph", True):
            return None
        key = (model.curated, vectors is not None)
        if self._graph_facts is None or self._graph_facts[0] != key:
            from .learneddata import graph_for

            self._graph_facts = (key, graph_for(self, model, ranker, vectors))
        return self._graph_facts[1]

    def learned_model(self, policy: Policy | None = None):
        """The learned ranking the policy asks for: None when off; the site's own model when one is stored and
        ("auto") it beat the default ranking under cross-validation; else, for a site with fewer curated lists than
        `[ranking] train_min_lists`, the shipped transferable default when it beat the fixed weights on every
        corpus (`default_model`); else None (the fixed weights). The site's model is read from the arrays stored
        with it when they stand (without its curated lists), else from its JSON (rank.learneddata.model_for)."""
        mode = (policy or Policy()).ranking.learned
        if mode == "off":
            return None
        from .learneddata import model_for

        model = model_for(self)
        if model is not None and (mode == "on" or model.beats_default()):
            return model
        return self.default_model(policy)

    def default_model(self, policy: Policy | None = None):
        """The shipped transferable default (recommender.rank.default_model) when this site has fewer curated
        lists than `[ranking] train_min_lists` and the model beat the fixed weights on every corpus it was
        measured on (leave-one-corpus-out); else None."""
        if self.curated_lists() >= (policy or Policy()).ranking.train_min_lists:
            return None
        from .default_model import shipped_model

        model = shipped_model()
        return model if model is not None and model.beats_default() else None

    def curated_lists(self) -> int:
        """How many curated related lists the index holds (read once)."""
        if self._curated_lists is None:
            self._curated_lists = self.store.curated_count()
        return self._curated_lists

    def ranking_in_force(self, policy: Policy | None = None) -> str:
        """Which ranking scores this site's candidates under the policy, in words (policy, info, --explain)."""
        model = self.learned_model(policy)
        lists = self.curated_lists()
        if model is None:
            return f"default (fixed weights; {lists} curated lists)"
        if not getattr(model, "uses_graph", True):
            return (f"transferable default (shipped, learned across sites; {lists} curated lists, fewer than "
                    f"[ranking] train_min_lists)")
        return f"learned from this site's {model.trained_on} curated lists"

    def ranker(self, policy: Policy | None = None, learned: bool = True):
        """The hybrid ranker for a policy's weights (built once per weights), re-scored by the learned ranking
        when the policy uses it (learned=False: the default ranking, what training starts from)."""
        ranking = (policy or Policy()).ranking
        model = self.learned_model(policy) if learned else None
        key = (ranking, model is not None)
        if key not in self._rankers:
            if "lexical" not in self.manifest.files:
                log.warning("%s: built before the hybrid ranking; embedding scores only (rebuild to add it)",
                            self.folder)
            ranker = self.query_data.ranker(self, ranking, tag_pool=self.tag_pool())
            if model is not None:  # the graph facts are made with the ranker itself (learneddata.graph_for)
                from .wiring import learned_rescorer

                ranker.rescorer = learned_rescorer(model, self.site_facts(), self.graph_facts(model, ranker))
            self._rankers[key] = ranker
        return self._rankers[key]

    def window_scores(self, keep_copy: bool = False):
        """Window-level scores over the stored windows (recommender.rank.windows), or None without them."""
        from .windows import stored_window_scores

        return stored_window_scores(self.folder, self.manifest, keep_copy)

    def window_ann(self, approximate_only: bool = False):
        """The stored nearest-window index (store.windowann.WindowANN, memory-mapped), or None for an index
        built before it. approximate_only: only the index the ranker searches with, an approximate one above
        candidates.EXACT_WINDOW_SEARCH stored windows; else None, the ranker searching the stored windows exactly
        (a query by id on such a site then reads no FAISS file)."""
        if approximate_only:
            from ..store.windowann import IVF
            from .candidates import EXACT_WINDOW_SEARCH

            stats = self.manifest.stats
            if stats.get("window_ann") != IVF or (stats.get("windows") or 0) <= EXACT_WINDOW_SEARCH:
                return None
        if self._window_ann is None:
            from ..store.windowfiles import read_window_ann

            self._window_ann = read_window_ann(self.folder, self.manifest)
        return self._window_ann

    def overrides(self):
        from .overrides import load_overrides

        return load_overrides(self.folder)

    def _policy(self, policy: Policy | None, k: int | None) -> Policy:
        policy = policy or Policy()
        return policy.with_links(k=k) if k is not None else policy

    def link_list(self, cand, policy: Policy, overrides=None, *, query_vector=None, every: bool = False) -> list:
        """The links `related` shows for one query's candidates (linking.Link, in order: pins, then ranked links
        above the minimum score) under the policy and an OverrideSet: the policy's k of them, or with every=True
        all of them, so that the first k of that list are exactly the k links shown (the editors' check)."""
        from .linking import choose_links, order_candidates

        ranker = self.ranker(policy)
        standing = ranker.standing() if policy.links.min_reverse is not None and ranker.rescorer is None else None
        ordered = order_candidates(cand, self.facts(), ranker.vectors, policy, overrides, query_vector=query_vector,
                                   limit=None if every else policy.links.k, standing=standing)
        return choose_links(ordered, policy, every=every)

    def _links(self, cand, policy: Policy, overrides: bool, explain: bool, query_vector=None,
               query_text: str | None = None) -> list[Related]:
        ranker = self.ranker(policy)
        chosen = self.link_list(cand, policy, self.overrides() if overrides else None, query_vector=query_vector)
        position = {int(r): i for i, r in enumerate(cand.rows)}
        model = self.learned_model(policy)
        signals = None
        items = []
        for link in chosen:
            i = position.get(link.row)
            parts = None if i is None else {name: {"value": round(float(cand.raw[name][i]), 4),
                                                   "z": round(float(cand.z[name][i]), 3),
                                                   "weight": ranker.weights[name]}
                                            for name in cand.raw if name in WEIGHTED_PARTS}  # not window_max
            if parts is not None and model is not None:  # each signal's part of the learned score
                if signals is None:
                    from .learned import signal_matrix

                    signals = signal_matrix(cand, self.site_facts(), self.graph_facts(model))
                parts["learned"] = model.contributions(signals[i], signals)
            items.append((link.row, link.score, link.pinned, parts))
        related = self.related_items(items)
        if explain:
            from .explain import explain_links

            explain_links(self, cand.query, related, query_vector=query_vector, query_text=query_text)
            ranking = self.ranking_in_force(policy)
            for item in related:
                item.explanation["ranking"] = ranking
        return related

    def _text_links(self, vector: np.ndarray, text: str, policy: Policy, explain: bool,
                    windows: np.ndarray | None = None) -> list[Related]:
        cand = self.ranker(policy).score_text(vector, text, windows=windows)
        return self._links(cand, policy, False, explain, query_vector=vector, query_text=text)

    def related_items(self, items) -> list[Related]:
        """The Related of each (row, score, pinned, parts) item, with the stored article's fields."""
        infos = self.store.by_rows([row for row, *_ in items])
        out = []
        for row, score, pinned, parts in items:
            i = infos[row]
            out.append(Related(id=i.id, score=None if score != score else round(float(score), 6), title=i.title,
                               url=i.url, published=i.published, source=i.source, kind=i.kind, pinned=pinned,
                               topics=list(i.topics), authors=list(i.authors), page_type=i.page_type,
                               parts=parts))
        return out

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
            "lexical_terms": self.manifest.stats.get("lexical_terms"),  # recorded at build: info reads no matrix
            "mentions": self.manifest.stats.get("mentions"),
            "windows": self.manifest.stats.get("windows"),  # window vectors stored for the window-level score
            "overrides": len(self.overrides().items),
            "articles_with": self.store.field_counts(),
            **{key: value for key, value in self.manifest.stats.items() if key.startswith("ann_recall")},
        }
