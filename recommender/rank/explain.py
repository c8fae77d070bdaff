"""Why a link was chosen: the parts of its score (already on each `Related`), the terms the two articles share,
whether one names the other, and the passage of the linked article that best matches the query.

The passage needs the model (each passage of the linked article is embedded and compared with the query's
vector), so `--explain` loads it; everything else reads the stored index.
"""

from __future__ import annotations

import numpy as np

from ..ingest.article import Article
from ..embed.prepare import prepare

PASSAGE_CHARS = 300


def explain_links(index, query_row: int, related: list, *, query_vector: np.ndarray | None = None,
                  query_text: str | None = None) -> None:
    """Fill `explanation` of each Related in place."""
    if not related:
        return
    lexical = index.lexical
    rows = {r.id: index.get(r.id).row for r in related}
    if query_vector is None:
        query_vector = index.vectors.vector(query_row)
    query_terms = None
    if query_row < 0 and lexical is not None and query_text:
        query_terms = lexical.transform(query_text)
    passages = best_passages(index, [rows[r.id] for r in related], np.asarray(query_vector, np.float32))
    for item in related:
        row = rows[item.id]
        explanation: dict = {}
        if lexical is not None:
            source = query_terms if query_row < 0 else query_row
            explanation["shared_terms"] = lexical.shared_terms(source, row) if source is not None else []
            if query_row >= 0:
                names = []
                if lexical.mentions[query_row, row] > 0:
                    names.append("this article names it")
                if lexical.mentions[row, query_row] > 0:
                    names.append("it names this article")
                explanation["mentions"] = names
        explanation["passage"], explanation["passage_score"] = passages[row]
        if item.pinned:
            explanation["pinned"] = "pinned by an editor"
        item.explanation = explanation


def best_passages(index, rows: list[int], query_vector: np.ndarray) -> dict[int, tuple[str, float]]:
    """For each row, its passage (head or body chunk) most similar to the query vector, with the cosine."""
    infos = index.store.by_rows(rows)
    texts_of = {}
    for row in rows:
        info = infos[row]
        body = index.store.body(row)
        prepared = prepare(Article(id=info.id, title=info.title, excerpt=info.excerpt, body=body), index.preparation)
        texts_of[row] = prepared.texts
    flat = [t for row in rows for t in texts_of[row]]
    vectors = index.embedder().encode(flat) if flat else np.zeros((0, len(query_vector)), np.float32)
    out, start = {}, 0
    for row in rows:
        count = len(texts_of[row])
        sims = vectors[start:start + count] @ query_vector
        best = int(np.argmax(sims))
        text = texts_of[row][best]
        out[row] = (text if len(text) <= PASSAGE_CHARS else text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …",
                    round(float(sims[best]), 4))
        start += count
    return out
