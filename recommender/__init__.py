"""recommender: related-articles links for news and blog sites.

The library API (the CLI is a thin layer over it):

    from recommender import build_index, Index, read_corpus
    build_index("demo/", "demo-index")            # ingest, embed (cached), write the FAISS index atomically
    with Index.open("demo-index") as index:       # refuses corrupted or mismatched indexes
        index.related("some-id-or-url", k=10)     # no model needed
        index.search("free text", k=10)           # loads the model on first use

Importing the package loads no model and imports neither torch nor FAISS.
"""

from .article import Article, Corpus, Problem
from .build import BuildReport, build_index
from .index import Index, Related, UnknownArticle
from .ingest import read_corpus
from .manifest import IndexProblem

__all__ = [
    "Article", "Corpus", "Problem", "Index", "Related", "UnknownArticle", "BuildReport", "build_index",
    "read_corpus", "IndexProblem",
]
__version__ = "0.1.0"
