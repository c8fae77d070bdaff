"""recommender: related-articles links for news and blog sites.

The library API (the CLI is a thin layer over it):

    from recommender import build_index, Index, read_corpus
    build_index("demo/", "demo-index")            # ingest, embed (cached), write the FAISS index atomically
    with Index.open("demo-index") as index:       # refuses corrupted or mismatched indexes
        index.related("some-id-or-url", k=10)     # no model needed
        index.search("free text", k=10)           # loads the model on first use

Importing the package loads no model and imports neither torch nor FAISS.
"""

from importlib import import_module

_EXPORTS = {
    "Article": "article", "Corpus": "article", "Problem": "article",
    "BuildReport": "build", "build_index": "build",
    "Index": "index", "Related": "index", "UnknownArticle": "index",
    "read_corpus": "ingest", "IndexProblem": "manifest",
}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    """Import on first use, so that `recommender related ID` loads only what a lookup needs."""
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'recommender' has no attribute {name!r}")
