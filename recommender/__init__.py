"""recommender: related-articles links for news and blog sites.

The library API (the CLI is a thin layer over it):

    from recommender import build_index, Index, read_corpus
    build_index("demo/", "demo-index")            # ingest, embed (cached), write the FAISS index atomically
    with Index.open("demo-index") as index:       # refuses corrupted or mismatched indexes
        index.related("some-id-or-url", k=10)     # no model needed
        index.search("free text", k=10)           # loads the model on first use

Importing the package loads no model and imports neither torch nor FAISS; it turns off the telemetry of the
libraries it loads later (common/offline.py), so that nothing leaves the machine.

The sub-packages, one stage each; data flows down this list and a stage imports only the ones above it
(tests/test_layout.py checks):

    common/    small shared helpers: atomic writes, time, progress, text rendering, blocks of rows, SQLite
    ingest/    files to articles: formats, fields, text clean-up, merge and dedupe, the prepared-article cache
    embed/     text preparation and chunking, embedding backends (OpenVINO, PyTorch), the vector cache
    store/     the index folder: manifest, metadata, vectors (FAISS), lexical index, lock, catalog
    rank/      signals, default and learned rankers, policy, overrides, link rules, explanations; Index (queries)
    evaluate/  metrics, baselines, cross-validation and training, reports, the editors' check
    batch/     building the index, the nightly job, local and Ray engines, outputs for sites
    serve/     the HTTP API and the editors' page
    cli/       the click commands, a thin layer over the above
"""

from importlib import import_module

from .common.offline import keep_offline

keep_offline()  # before any library the package loads later: no telemetry, no model hub (common/offline.py)

_EXPORTS = {
    "Article": "ingest.article", "Corpus": "ingest.article", "Problem": "ingest.article",
    "BuildReport": "batch.build", "build_index": "batch.build",
    "Index": "rank.index", "Related": "rank.results", "UnknownArticle": "rank.results",
    "read_corpus": "ingest.reader", "IndexProblem": "store.manifest",
    "run_batch": "batch.nightly", "BatchError": "batch.nightly", "evaluate_index": "evaluate.evaluation",
    "Overrides": "rank.overrides", "Policy": "rank.policy", "load_policy": "rank.policy",
}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    """Import on first use, so that `recommender related ID` loads only what a lookup needs."""
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'recommender' has no attribute {name!r}")
