"""How a ranker is put together, written once: which ranking a site's candidates are scored by (the fixed weights,
the site's learned model or the shipped transferable default) and the one constructor of the hybrid ranker with
its parts (the learned ranking's rescorer, the shared-tag candidate pool, windows, approximate indexes).

    build_ranker(...)       the one place a ranking.HybridRanker is made, for every caller
    query_ranker(data, ..)  over an opened index's mapped arrays (rank.index.Index.ranker: queries, the service and
                            evaluation)
    learned_model(data, ..) the learned ranking the policy asks for, or None (the fixed weights)

The nightly batch builds its ranker with build_ranker too (batch.relatedlists.LinkJob.ranker, over the build's
full-precision vectors and the batch's frozen corpus statistics)."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np

from .policy import Policy

log = logging.getLogger(__name__)


def build_ranker(vectors: np.ndarray, lexical, ranking, *, ann=None, moments=None, windows=None, window_ann=None,
                 features=None, tagged: bool | None = None, model=None, graph=None, frozen=None,
                 wrap_rescorer=None, window_margin: float = 0.0):
    """The hybrid ranker (ranking.HybridRanker) under `ranking` (the policy's [ranking]) over these vectors and
    lexical index, re-scored by `model` (a learned model; None: the fixed weights) over the article features
    (signals.ArticleFeatures) and link graphs (graph_signals.LinkGraphs, None for a model that reads none), with the
    shared-tag candidate pool when any article has tags (`tagged`, when the caller knows it without the features).
    ann: an approximate vector index for the dense candidates; moments: the corpus's dense moments when they
    were precomputed; windows, window_ann: the stored windows and their approximate index; frozen: the batch's
    kept corpus statistics (rank.corpusstats.CorpusStats); wrap_rescorer: rescorer -> rescorer (the batch's voter
    recording); window_margin: windowstage.WindowStage's margin (the batch's learned reach)."""
    from .ranking import HybridRanker

    rescorer = None
    if model is not None:
        rescorer = learned_rescorer(model, features, graph)
        if wrap_rescorer is not None:
            rescorer = wrap_rescorer(rescorer)
    return HybridRanker(vectors, lexical, ranking, ann=ann, frozen=frozen, rescorer=rescorer, moments=moments,
                        tag_pool=shared_tag_pool(features, tagged), windows=windows, window_ann=window_ann,
                        window_margin=window_margin)


def query_ranker(data, ranking, model=None):
    """The ranker a query uses on an opened index (rank.indexdata.IndexData) under `ranking`, re-scored by `model`
    (learned_model; None: the fixed weights): over the precomputed arrays where the index has them
    (rank.querydata), the stored windows, and the approximate vector and window indexes of a large corpus."""
    from .querydata import rebuild_hint

    if "lexical" not in data.manifest.files:
        log.warning("%s: built before the hybrid ranking; embedding scores only (rebuild to add it)", data.folder)
    arrays = data.query_data
    if not arrays.available:
        rebuild_hint(data.folder)
    ann = data.vectors if data.approximate else None
    lexical = None
    if "lexical" in data.manifest.files:
        lexical = arrays.lexical(lambda: data.lexical) or data.lexical
    # an approximate index's vectors decoded by row as read (store.ann.DecodedRows), never all of them for one
    # query; an exact one's mapped (or read from FAISS, for an index built before the mapped copy)
    if ann is not None and not arrays.has("vectors"):
        matrix = ann.decoded()
    else:
        matrix = np.ascontiguousarray(arrays.array("vectors") if arrays.has("vectors") else data.vectors.vectors(),
                                      dtype=np.float32)
    moments = arrays.moments()
    tagged = data.tagged()
    features = data.article_features() if tagged or model is not None else None
    graph = None
    if model is not None:  # the graphs are made with the ranker's corpus moments (learneddata.graph_for)
        if moments is None:
            from .corpusstats import dense_moments

            moments = dense_moments(matrix)  # what the ranker would compute
        graph = data.link_graphs(model, moments)
    return build_ranker(matrix, lexical, ranking, ann=ann, moments=moments, windows=data.window_scores(),
                        window_ann=data.window_ann(approximate_only=True), features=features, tagged=tagged,
                        model=model, graph=graph)


def learned_rescorer(model, features, graph):
    """The rescorer of a learned ranking (learned.rescore): the model over these article features
    (signals.ArticleFeatures) and link graphs (graph_signals.LinkGraphs, or None for a model that reads none)."""
    from .learned import Rescorer

    return Rescorer(model, features, graph)


def shared_tag_pool(features, tagged: bool | None = None):
    """The shared-tag candidate pool (signals.tag_pool) over these article features when any article has tags,
    else None. `tagged`: whether any has, when the caller knows it without reading the features."""
    if features is None or not (features.tags.nnz if tagged is None else tagged):
        return None
    from .signals import tag_pool

    return partial(tag_pool, features)


# --- which ranking is in force ------------------------------------------------------------------------------


def learned_model(data, policy: Policy | None = None):
    """The learned ranking the policy asks for on an opened index (rank.indexdata.IndexData): None when off; the
    site's own model when one is stored and ("auto") it beat the default ranking under cross-validation; else, for
    a site with fewer curated lists than `[ranking] train_min_lists`, the shipped transferable default when it beat
    the fixed weights on every corpus (default_model); else None (the fixed weights). The site's model is read from
    the arrays stored with it when they stand (without its curated lists), else from its JSON
    (rank.learneddata.model_for)."""
    mode = (policy or Policy()).ranking.learned
    if mode == "off":
        return None
    from .learneddata import model_for

    model = model_for(data)
    if model is not None and (mode == "on" or model.beats_default()):
        return model
    return default_model(data, policy)


def default_model(data, policy: Policy | None = None):
    """The shipped transferable default (rank.default_model) when this site has fewer curated lists than
    `[ranking] train_min_lists` and the model beat the fixed weights on every corpus it was measured on
    (leave-one-corpus-out); else None."""
    if data.curated_lists() >= (policy or Policy()).ranking.train_min_lists:
        return None
    from .default_model import shipped_model

    model = shipped_model()
    return model if model is not None and model.beats_default() else None


def ranking_in_force(data, policy: Policy | None = None) -> str:
    """Which ranking scores this site's candidates under the policy, in words (`policy`, `info`, --explain)."""
    model = learned_model(data, policy)
    lists = data.curated_lists()
    if model is None:
        return f"default (fixed weights; {lists} curated lists)"
    if not getattr(model, "uses_graph", True):
        return (f"transferable default (shipped, learned across sites; {lists} curated lists, fewer than "
                f"[ranking] train_min_lists)")
    return f"learned from this site's {model.trained_on} curated lists"
