"""How a ranker is put together, in one place for a query (rank.index.Index.ranker over the index's mapped arrays),
the nightly batch (batch.relatedlists.LinkJob.ranker over the build's vectors) and evaluation (through the index):
the learned ranking's rescorer and the shared-tag candidate pool are wired the same way everywhere."""

from __future__ import annotations

from functools import partial


def learned_rescorer(model, features, graph):
    """The rescorer of a learned ranking (learned.rescore): the model over these article features
    (signals.ArticleFeatures) and link graphs (graph_signals.LinkGraphs, or None for a model that reads none)."""
    from .learned import rescore

    return partial(rescore, facts=features, model=model, graph=graph)


def shared_tag_pool(features, tagged: bool | None = None):
    """The shared-tag candidate pool (signals.tag_pool) over these article features when any article has tags,
    else None. `tagged`: whether any has, when the caller knows it without reading the features."""
    if features is None or not (features.tags.nnz if tagged is None else tagged):
        return None
    from .signals import tag_pool

    return partial(tag_pool, features)
