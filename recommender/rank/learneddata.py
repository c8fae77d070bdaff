"""What a query by id with a learned ranking reads instead of rebuilding: the model's coefficients and the link-graph
facts its signals read (graph_signals.LinkGraphs), written when the model is stored (`recommender train`, the
batch's training) and again with each new index version, as memory-mapped `.npy` files (never pickle).

    learned-TOKEN-params.npy                        3 x signals float64: the model's mean, scale and coefficients
    learned-TOKEN-{mentions_t,lists,lists_t,co}_{data,indices,indptr}.npy   the graphs (CSR arrays)
    learned-TOKEN-named_by.npy, -in_links.npy       per-article in-degrees
    learned-TOKEN-dense_stats.npy                   n x 2: each article's cosine mean and deviation over the corpus

The mentions M (a names b) are not written again: they are the lexical index's own matrix, byte for byte, read
mapped from the version's lexical file (`lexical-TOKEN.npz`, its `mentions_*` members), and their transpose Mᵀ
is the query data's (`query-TOKEN-mentions_t_*`, rank.querydata): at 1M articles 4.8 GB each not stored again.
An index written before this names its own `learned:mentions_*` / `learned:mentions_t_*` files, read as before.

Without them a query in a fresh process parses the model's JSON (its curated lists: 2 MB on MDN), builds the graph
facts from the lexical index (importing SciPy) and reads the vectors through FAISS: seconds instead of
milliseconds. Each file is named (role "learned:NAME") and checksummed in the manifest; the manifest's stats
record (`learned_data`) the sha256 of the model file they were made from, its intercept and cross-validated
figures, and the model file itself is named in the manifest (role "learned_ranker"). `recommender train` and
the batch's training write them (recommender.evaluate.training.store_model); a model saved with
`learned.save_model` alone has none, and is read from its JSON. A query uses these files
only while that sha256 is the model file's: a model stored by other means is read from its JSON, as before.

The numbers are the same: the facts are those `learned.graph_facts` builds in the query process (the same
function, run here), and the cosine statistics of every article are computed as the query process computes them
for its candidates (`LinkGraphs.dense_stats_of`, here over all rows at once).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..store.manifest import LEARNED_MODEL_FILE  # not from learned.py: a query without a model imports none of it

log = logging.getLogger(__name__)

PREFIX = "learned:"
STATS_KEY = "learned_data"
GRAPHS = ("mentions", "mentions_t", "lists", "lists_t", "co")
VECTORS = ("named_by", "in_links", "dense_stats")
NAMES = ("params",) + tuple(f"{g}_{p}" for g in GRAPHS for p in ("data", "indices", "indptr")) + VECTORS
SHARED = ("mentions_data", "mentions_indices", "mentions_indptr")  # M: the lexical file's, unless named here
TURNED = ("mentions_t_data", "mentions_t_indices", "mentions_t_indptr")  # Mᵀ: the query data's, unless named here
PATTERN = "learned-*.npy"


# --- when a model is stored, or an index version written --------------------------------------------------


def write_learned_data(folder: Path, model, model_sha256: str, vectors, lexical, ids: list[str],
                       moments, turned=None, turned_files: Path | None = None,
                       query_turned: bool = False) -> tuple[dict, dict]:
    """Write the arrays for `model` over this index version; returns (manifest entries {role: FileEntry}, the
    stats record). vectors, lexical, ids, moments: what the query process would read (IndexData.link_graphs);
    vectors: the n x d array, or a function (start, stop) -> those rows (an approximate index's decoded a block at
    a time: at 1M articles, 1.5 GB). turned: Mᵀ when the caller has it (mentionmatrix.transpose); turned_files:
    where that wrote it, when it did: the files are moved into this version's (the same bytes write_csr_files
    writes). M is not written when it is the lexical file's matrix, nor Mᵀ when, besides, the version's query
    data holds it (query_turned: its `query:mentions_t_*` files, the same bytes)."""
    import secrets

    from ..store.bothways import write_turned
    from ..store.npyfiles import write_npy_files
    from .learned import graph_facts

    n = len(ids)
    rows_of = vectors if callable(vectors) else (lambda start, stop: vectors[start:stop])
    if moments is None:  # an array given (a function of rows comes with its moments)
        from .corpusstats import dense_moments

        moments = dense_moments(np.asarray(vectors, dtype=np.float32))
    # the mentions are the lexical index's own matrix, their transpose written by blocks of rows (at 1M articles
    # each is GBs), the cosine statistics made graph_signals.DENSE_STATS_BLOCK rows at a time, every article's as a
    # query computes its candidates' (all at once when a block holds more than a quarter of them, as dense_stats_of)
    # M sorted already: graph_facts takes the lexical index's matrix as it is (no copy), the lexical file's bytes
    sorted_before = lexical is not None and bool(lexical.mentions.has_sorted_indices)
    graph = graph_facts(np.zeros((n, 0), np.float32), lexical, model, ids, moments, turned=False)
    shared = sorted_before and graph.mentions is lexical.mentions  # M is the lexical file's: not written again
    graph.fill_dense_stats(rows_of)
    stem = f"learned-{secrets.token_hex(4)}"
    entries = write_npy_files(folder, stem, PREFIX,
                              {"params": np.array([model.mean, model.scale, model.coef], dtype=np.float64)})
    for name in GRAPHS:
        if name == "mentions_t" and shared and query_turned:
            continue
        if name == "mentions_t":  # moved in when the build wrote it (GBs at 1M articles), else written by rows
            written = write_turned(folder, stem, PREFIX, graph.mentions, turned, turned_files)
            entries.update({f"{PREFIX}{name}_{part}": written[f"{PREFIX}{name}_{part}"]
                            for part in ("data", "indices", "indptr")})
            continue
        if name == "mentions" and shared:
            continue
        matrix = getattr(graph, name)
        entries.update(write_npy_files(folder, stem, PREFIX, {f"{name}_data": matrix.data,
                                                               f"{name}_indices": matrix.indices,
                                                               f"{name}_indptr": matrix.indptr}))
    entries.update(write_npy_files(folder, stem, PREFIX, {name: getattr(graph, name) for name in VECTORS}))
    stats = {"model_sha256": model_sha256, "signals": list(model.signals), "intercept": float(model.intercept),
             "trained_on": int(model.trained_on), "cv": model.cv, "curated": model.curated}
    return entries, stats


def with_learned_data(manifest, entries: dict, stats: dict | None):
    """The manifest with these learned files (replacing any earlier ones; none when entries is empty)."""
    manifest.files = {role: e for role, e in manifest.files.items() if not role.startswith(PREFIX)}
    manifest.files.update(entries)
    manifest.stats = {k: v for k, v in manifest.stats.items() if k != STATS_KEY}
    if stats is not None:
        manifest.stats[STATS_KEY] = stats
    return manifest


def remove_unnamed(folder: Path, manifest) -> None:
    live = {entry.name for entry in manifest.files.values()}
    for path in folder.glob(PATTERN):
        if path.name not in live:
            path.unlink(missing_ok=True)


def for_new_version(folder: Path, vectors, lexical, ids: list[str], moments, turned=None,
                    turned_files: Path | None = None, query_turned: bool = False) -> tuple[dict, dict | None]:
    """At build: the stored model's entry and arrays for the index version being written (({}, None) when there
    is no usable model). The model file is kept across versions; its arrays are made again for the new one.
    vectors, turned, turned_files, query_turned: as write_learned_data's."""
    from ..store.manifest import IndexProblem, file_entry
    from .learned import load_model

    try:
        model = load_model(folder)
    except IndexProblem as exc:
        log.warning("%s", exc)
        return {}, None
    if model is None:
        return {}, None
    entry = file_entry(folder / LEARNED_MODEL_FILE)
    entries, stats = write_learned_data(folder, model, entry.sha256, vectors, lexical, ids, moments, turned,
                                        turned_files, query_turned)
    return {"learned_ranker": entry, **entries}, stats


# --- query time -------------------------------------------------------------------------------------------


class CSRArrays:
    """The CSR arrays graph_signals reads of a matrix (data, indices, indptr), memory-mapped."""

    def __init__(self, data, indices, indptr):
        self.data, self.indices, self.indptr = data, indices, indptr


def usable(manifest) -> bool:
    """Whether the manifest names learned arrays made from the model file it names."""
    stats, entry = manifest.stats.get(STATS_KEY), manifest.files.get("learned_ranker")
    return (isinstance(stats, dict) and entry is not None and stats.get("model_sha256") == entry.sha256
            and all(PREFIX + name in manifest.files for name in NAMES if name not in SHARED + TURNED)
            and (all(PREFIX + name in manifest.files for name in SHARED) or "lexical" in manifest.files)
            and all(PREFIX + name in manifest.files or "query:" + name in manifest.files for name in TURNED))


def stored_model(manifest, data):
    """The learned model from the arrays (coefficients and figures; no curated lists), or None when the index
    has no usable arrays. data: the index's querydata.QueryData-like reader of `learned:` files."""
    if not usable(manifest):
        return None
    from .learned import ALL_SIGNALS, LearnedModel

    stats = manifest.stats[STATS_KEY]
    params = np.asarray(data.array("params"), dtype=np.float64)
    if stats.get("signals") != list(ALL_SIGNALS) or params.shape != (3, len(ALL_SIGNALS)):
        return None  # made for other signals: the JSON is read (and refused) as before
    mean, scale, coef = params.tolist()
    return LearnedModel(signals=list(ALL_SIGNALS), mean=mean, scale=scale, coef=coef,
                        intercept=float(stats["intercept"]), trained_on=int(stats.get("trained_on", 0)),
                        cv=stats.get("cv") or {}, curated=stats.get("curated", ""))


def stored_graph(manifest, data, vectors, moments):
    """graph_signals.LinkGraphs over the mapped arrays (every article's cosine statistics precomputed)."""
    from .graph_signals import LinkGraphs

    graphs = {name: CSRArrays(*(data.array(f"{name}_{p}") for p in ("data", "indices", "indptr")))
              for name in GRAPHS}
    return LinkGraphs(vectors=vectors, mean_vector=moments[0], second_moment=moments[1],
                      named_by=data.array("named_by"), in_links=data.array("in_links"),
                      dense_stats=data.array("dense_stats"), **graphs)


def model_for(index):
    """The index's learned model: from its stored arrays when they stand (no JSON parsed), else its JSON file
    (learned.load_model; None when there is none). index: an opened index's data (rank.indexdata.IndexData)."""
    model = index.learned_files.model  # read from the arrays of this version, once
    if model is None:
        if "learned_ranker" not in index.manifest.files and not (index.folder / LEARNED_MODEL_FILE).exists():
            return None  # no model: the learned ranking's modules are not imported
        from .learned import load_model

        model = load_model(index.folder)
    return model


def graph_for(index, model, moments=None, vectors=None):
    """The LinkGraphs `model` reads on `index` (an opened index's data, rank.indexdata.IndexData): the stored arrays
    when they were made for this model and the index's own vectors (an exact index, or no other vectors given),
    else built (reading the model's curated lists from its JSON when the model came from the arrays). moments: the
    corpus's dense moments the query's ranker reads (None: the stored ones, else computed from the vectors)."""
    from ..store.ann import BACKENDS

    exact = not getattr(BACKENDS.get(index.manifest.backend), "approximate", False)
    if usable(index.manifest) and (vectors is None or exact) and \
            model.curated == index.manifest.stats[STATS_KEY].get("curated"):
        data = index.query_data
        mapped = data.array("vectors") if data.has("vectors") else np.zeros((index.manifest.count, 0), np.float32)
        stored = moments if moments is not None else data.moments()
        if stored is not None:
            return stored_graph(index.manifest, index.learned_files, mapped, stored)
    from .learned import graph_facts, load_model

    if not model.lists:  # read from the arrays: the curated lists are in the JSON
        model = load_model(index.folder) or model
    turned = stored_turned(index)  # Mᵀ does not depend on the vectors: the stored one, mapped, when it stands
    if vectors is not None:
        graph = graph_facts(vectors, index.lexical, model, index.store.ids(), turned=turned is None)
    else:
        graph = graph_facts(index.vectors.vectors(), index.lexical, model, index.store.ids(), moments,
                            turned=turned is None)
    if turned is not None:
        graph.mentions_t = turned
    return graph


def stored_turned(index):
    """Mᵀ as the learned arrays or the query data stored it (a SciPy matrix over the mapped files), or None when
    neither stands for this version: what a graph built in process reads instead of turning M again (at 1M articles, GBs)."""
    if usable(index.manifest):
        arrays = tuple(np.asarray(index.learned_files.array(f"mentions_t_{part}"))
                       for part in ("data", "indices", "indptr"))
    elif index.query_data.turned() is not None:  # the query data's (indptr, indices, data)
        arrays = tuple(reversed(index.query_data.turned()))
    else:
        return None
    from scipy import sparse

    n = index.manifest.count
    turned = sparse.csr_matrix(arrays, shape=(n, n), copy=False)
    turned.has_sorted_indices = True  # written sorted (write_learned_data)
    return turned


def write_for_index(index) -> None:
    """After a model was stored in an opened index's folder: its arrays over that index version, named in the
    manifest with the model file (recommender.evaluate.training.store_model opens the index and calls this)."""
    from ..store.manifest import read_manifest, write_manifest
    from .corpusstats import dense_moments

    data = index.query_data
    vectors = np.asarray(data.array("vectors")) if data.has("vectors") else index.vectors.vectors()
    moments = data.moments() or dense_moments(vectors)
    entries, stats = for_new_version(index.folder, vectors, index.lexical, index.store.ids(), moments,
                                     query_turned=data.turned() is not None)
    manifest = read_manifest(index.folder)
    write_manifest(index.folder, with_learned_data(manifest, entries, stats))
    remove_unnamed(index.folder, manifest)


class LearnedFiles:
    """Reads the `learned:` files of an index version (memory-mapped on first use), and the model they hold."""

    def __init__(self, folder: Path, manifest):
        self.folder = folder
        self.manifest = manifest
        self.names = {role[len(PREFIX):]: e.name for role, e in manifest.files.items() if role.startswith(PREFIX)}
        self._arrays: dict[str, np.ndarray] = {}
        self._model: tuple | None = None  # (the model read from the arrays, or None), once

    @property
    def model(self):
        """The learned model read from the arrays (stored_model), or None when they do not stand."""
        if self._model is None:
            self._model = (stored_model(self.manifest, self),)
        return self._model[0]

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            if name in SHARED and name not in self.names:  # M: the lexical file's own arrays
                from ..store.bothways import lexical_mentions

                path = self.folder / self.manifest.files["lexical"].name
                self._arrays.update(zip(("mentions_indptr", "mentions_indices", "mentions_data"),
                                        lexical_mentions(path)))
            elif name in TURNED and name not in self.names:  # Mᵀ: the query data's
                from ..store.npyfiles import mapped_npy

                self._arrays[name] = mapped_npy(self.folder / self.manifest.files[f"query:{name}"].name,
                                                "rebuild the index")
            else:
                from ..store.npyfiles import mapped_npy

                self._arrays[name] = mapped_npy(self.folder / self.names[name], "run `recommender train` again")
        return self._arrays[name]

