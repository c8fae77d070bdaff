"""What a query by id reads instead of rebuilding: arrays written with each index version at build time and
memory-mapped by a query (`.npy` files, `np.load(mmap_mode="r")`, never pickle), so that a fresh process answers
without importing SciPy or FAISS and without a pass over every article.

    query-TOKEN-vectors.npy                     n x d float32: the flat index's vectors (exact indexes only)
    query-TOKEN-dense_mean.npy, -dense_second.npy    the embedding's corpus moments (corpusstats.dense_moments)
    query-TOKEN-tfidf_{data,indices,indptr}.npy      TF-IDF rows (CSR, as in the lexical index)
    query-TOKEN-postings_{data,indices,indptr}.npy   the same matrix by term (CSR of its transpose)
    query-TOKEN-postings_max.npy                     each term's largest posting (store.lextopk's MaxScore bound)
    query-TOKEN-impacts_{indices,data}.npy           the postings by value, largest first (store.lextopk.ImpactTopK)
    query-TOKEN-tfidf_mean.npy                       the corpus's mean TF-IDF row (a lexical z-score's mean)
    query-TOKEN-lexical_sample_{starts,owner,values}.npy  the lexical sample's rows by term (candidates.lexical_sample)
    query-TOKEN-mentions_t_{data,indices,indptr}.npy Mᵀ (CSR): with M, the lexical file's own, the mentions in
                                                     both directions (store.bothways; an index written before
                                                     stored M + Mᵀ as query-TOKEN-mentions_*, read as it is)
    query-TOKEN-facts_{sources,days,drafts,titles,names,targets}.npy  what the link rules read (linking.RuleColumns)
    query-TOKEN-site_*.npy                           what the learned ranking's signals read (signals.ArticleFeatures)

Each file is named (role "query:NAME") and checksummed in the manifest, so it is verified, versioned and swapped
with the rest of the index. Scores computed from these arrays are the same numbers as from the lexical index
(the same float32 products, summed in the same order as SciPy's sparse product). An index built before these
files existed still answers, rebuilding what it needs in the query process, and says how to make it faster.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import numpy as np

from ..store.bothways import PARTS  # the mention files' parts

log = logging.getLogger(__name__)

PREFIX = "query:"
REQUIRED = ("dense_mean", "dense_second", "facts_sources", "facts_days")
LEXICAL = tuple(f"{m}_{p}" for m in ("tfidf", "postings") for p in ("data", "indices", "indptr"))


# --- build time -------------------------------------------------------------------------------------------


def write_query_data(folder: Path, token: str, vectors: np.ndarray, lexical, articles: Sequence,
                     ann, moments: tuple[np.ndarray, np.ndarray] | None = None, turned=None,
                     turned_files: Path | None = None) -> dict:
    """Write the arrays of one index version; returns the manifest entries {role: FileEntry}. articles: the
    articles or their metadata (store.metadata.ArticleInfo); moments: the corpus moments when the caller has them
    (corpusstats.dense_moments of the index's vectors, decoded for an approximate index); turned: Mᵀ when the caller
    has it (mentionmatrix.transpose); turned_files: where that wrote it, when it did: the files are moved into
    this version's (the same bytes write_csr_files writes). M itself is the lexical file's (written before)."""
    from .linking import RuleColumns
    from ..store.lextopk import PostingsTopK, impact_order
    from ..store.bothways import write_turned
    from ..store.npyfiles import write_npy_files
    from .corpusstats import dense_moments
    from .signals import ArticleFeatures

    exact = not getattr(ann, "approximate", False)
    stem = f"query-{token}"
    arrays: dict[str, np.ndarray] = {}
    if exact:  # an approximate index's vectors are its decoded codes: the query reads them from FAISS
        arrays["vectors"] = np.ascontiguousarray(vectors, dtype=np.float32)
    if moments is None:
        moments = dense_moments(np.ascontiguousarray(vectors if exact else ann.vectors(), dtype=np.float32))
    arrays["dense_mean"], arrays["dense_second"] = moments
    entries = write_npy_files(folder, stem, PREFIX, arrays)
    arrays = {}
    if lexical is not None:
        from .candidates import LexicalStage, lexical_sample

        # Mᵀ (moved in, or written by blocks of rows), then the postings (csr_arrays holds them all: at 1M
        # articles, GBs each)
        entries.update(write_turned(folder, stem, PREFIX, lexical.mentions, turned, turned_files))
        csr = {"tfidf": (lexical.tfidf.indptr, lexical.tfidf.indices, lexical.tfidf.data),
               "postings": lexical.postings_arrays(), "mentions": None}  # the mean reads the TF-IDF rows alone
        arrays = {**csr_files("tfidf", csr["tfidf"]), **csr_files("postings", csr["postings"])}
        # the corpus's mean TF-IDF row (a lexical z-score's exact mean), each term's largest posting (MaxScore's
        # bound) and the postings by value (ImpactTopK)
        arrays["tfidf_mean"] = LexicalStage(csr, lexical.count, lexical.vocabulary_size).mean
        arrays["postings_max"] = PostingsTopK(*csr["postings"], lexical.count).term_maxima()
        arrays["impacts_indices"], arrays["impacts_data"] = impact_order(*csr["postings"])
        # the lexical sample's rows by term (a z-score's mean square): a query reads its terms' entries alone
        _, arrays["lexical_sample_starts"], arrays["lexical_sample_owner"], arrays["lexical_sample_values"] = \
            lexical_sample(csr["tfidf"], lexical.count, lexical.vocabulary_size)
        entries.update(write_npy_files(folder, stem, PREFIX, arrays))
        del csr
        arrays = {}
    facts = RuleColumns.from_infos(articles, [a.topics for a in articles])
    arrays["facts_sources"], arrays["facts_days"] = facts.sources, facts.days
    arrays["facts_drafts"] = facts.drafts if facts.drafts is not None else np.zeros(len(articles), dtype=bool)
    arrays["facts_titles"] = facts.title_codes
    arrays["facts_names"], arrays["facts_targets"] = facts.name_codes, facts.pages
    arrays["facts_apinames"] = facts.api_names
    site = ArticleFeatures.from_infos(articles)
    for f in fields(ArticleFeatures):
        value = getattr(site, f.name)
        if hasattr(value, "indptr"):  # a SciPy CSR matrix
            arrays.update({f"site_{f.name}.data": value.data, f"site_{f.name}.indices": value.indices,
                           f"site_{f.name}.indptr": value.indptr,
                           f"site_{f.name}.shape": np.array(value.shape, dtype=np.int64)})
        else:
            arrays[f"site_{f.name}"] = np.asarray(value)
    return {**entries, **write_npy_files(folder, stem, PREFIX, arrays)}


def csr_files(name: str, csr: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """The files of one CSR matrix given as (indptr, indices, data): {name_data, name_indices, name_indptr}."""
    indptr, indices, data = csr
    return {f"{name}_data": data, f"{name}_indices": indices, f"{name}_indptr": indptr}


# --- query time -------------------------------------------------------------------------------------------


class QueryData:
    """The precomputed arrays of an opened index version (each mapped on first use)."""

    def __init__(self, folder: Path, manifest):
        self.folder = folder
        self.names = {role[len(PREFIX):]: entry.name for role, entry in manifest.files.items()
                      if role.startswith(PREFIX)}
        self._arrays: dict[str, np.ndarray] = {}
        self.count = manifest.count
        self.lexical_file = manifest.files["lexical"].name if "lexical" in manifest.files else None
        self._both = None  # the mentions both ways (both_ways), mapped on first use

    @property
    def available(self) -> bool:
        return all(name in self.names for name in REQUIRED)

    def has(self, name: str) -> bool:
        return name in self.names

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            from ..store.npyfiles import mapped_npy

            self._arrays[name] = mapped_npy(self.folder / self.names[name], "rebuild the index")
        return self._arrays[name]

    def has_mentions(self) -> bool:
        """Whether the mentions both ways can be read: Mᵀ with the lexical file's M, or M + Mᵀ stored (before)."""
        return all(self.has(f"mentions_{p}") for p in PARTS) or (
            self.lexical_file is not None and all(self.has(f"mentions_t_{p}") for p in PARTS))

    def turned(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Mᵀ's mapped arrays (indptr, indices, data), or None for an index written before they were stored."""
        if not all(self.has(f"mentions_t_{p}") for p in PARTS):
            return None
        return tuple(self.array(f"mentions_t_{p}") for p in ("indptr", "indices", "data"))

    def both_ways(self):
        """The mentions both ways (store.bothways): M (the lexical file's) and Mᵀ, or M + Mᵀ as stored before;
        mapped once."""
        from ..store.bothways import BothWays, Summed, lexical_mentions

        if self._both is None and all(self.has(f"mentions_{p}") for p in PARTS):  # written before: M + Mᵀ stored
            self._both = Summed(tuple(self.array(f"mentions_{p}") for p in ("indptr", "indices", "data")), self.count)
        elif self._both is None:
            self._both = BothWays(lexical_mentions(self.folder / self.lexical_file), self.turned(), self.count)
        return self._both

    def vector_shape(self) -> tuple[int, ...] | None:
        return tuple(self.array("vectors").shape) if self.has("vectors") else None

    def moments(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.available:
            return None
        return np.asarray(self.array("dense_mean")), np.asarray(self.array("dense_second"))

    def lexical(self, full):
        """A lexical scorer over the mapped arrays; `full` () -> the LexicalIndex, for everything else."""
        if not all(self.has(name) for name in LEXICAL) or not self.has_mentions():
            return None
        from .mappedarrays import MappedLexical

        return MappedLexical(self, full)

    def postings_topk(self):
        """store.lextopk.PostingsTopK over the mapped postings (with the stored maxima when the index has them),
        or None when the index was built without the postings."""
        from ..store.lextopk import PostingsTopK

        if not all(self.has(f"postings_{p}") for p in ("data", "indices", "indptr")):
            return None
        a = self.array
        return PostingsTopK(a("postings_indptr"), a("postings_indices"), a("postings_data"), self.count,
                            a("postings_max") if self.has("postings_max") else None)

    def facts(self, store):
        """linking.RuleColumns from the stored arrays; ids and topics are read from the metadata on first use."""
        if not self.available or not all(self.has(f"facts_{name}") for name in ("drafts", "titles", "names", "targets")):
            return None  # made before these were kept: the caller builds RuleColumns from the metadata
        from ..ingest.text import url_host
        from .linking import RuleColumns, api_name_codes

        ids = RowIds(store)
        drafts = self.array("facts_drafts")
        return RuleColumns(ids=ids, sources=self.array("facts_sources"), days=self.array("facts_days"),
                     topics=Lazy(lambda: [frozenset(t.lower() for t in ts) for ts in store.topics()]),
                     row_of=Lazy(lambda: {x: r for r, x in enumerate(ids)}, dict),
                     drafts=drafts if drafts.any() else None, title_codes=self.array("facts_titles"),
                     name_codes=self.array("facts_names"), pages=self.array("facts_targets"),
                     hosts=Lazy(lambda: [url_host(url) for url in store.urls()]),
                     # an index built before the API names were kept: from the metadata
                     api_names=self.array("facts_apinames") if self.has("facts_apinames") else
                     api_name_codes(store.all()))

    def site_facts(self):
        """signals.ArticleFeatures from the stored arrays, or None when they are missing or were made for other
        fields."""
        from .mappedarrays import MappedCSR
        from .signals import ArticleFeatures

        values = {}
        for f in fields(ArticleFeatures):
            name = f"site_{f.name}"
            if self.has(name):
                values[f.name] = self.array(name)
            elif self.has(name + ".indptr"):
                shape = tuple(int(x) for x in self.array(name + ".shape"))
                values[f.name] = MappedCSR(self.array(name + ".data"), self.array(name + ".indices"),
                                           self.array(name + ".indptr"), shape)
            else:
                return None
        return ArticleFeatures(**values)


class Lazy:
    """A list (or dict) made by `load` on first use; pickled (Ray's transport) as the plain value."""

    def __init__(self, load, kind=list):
        self._load, self._kind, self._value = load, kind, None

    def _get(self):
        if self._value is None:
            self._value = self._kind(self._load())
        return self._value

    def __getitem__(self, key):
        return self._get()[key]

    def __contains__(self, key) -> bool:
        return key in self._get()

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __reduce__(self):
        return (self._kind, (self._get(),))


class RowIds(Lazy):
    """Article ids by row: one row is looked up alone (a query needs its own id, and a few more for blocks);
    iterating reads them all."""

    def __init__(self, store):
        super().__init__(store.ids)
        self._store, self._one = store, {}

    def __getitem__(self, row):
        if self._value is not None or not isinstance(row, (int, np.integer)) or row < 0:
            return self._get()[row]
        if row not in self._one:
            found = self._store.db.execute("SELECT id FROM articles WHERE row = ?", [int(row)]).fetchone()
            if found is None:
                raise IndexError(row)
            self._one[row] = found[0]
        return self._one[row]


def rebuild_hint(folder: Path) -> None:
    log.info("%s: built without the precomputed query data; queries rebuild it each time (rebuild the index "
             "with `recommender index` to answer faster)", folder)
