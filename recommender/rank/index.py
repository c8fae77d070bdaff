"""The index's query facade: the questions an opened index answers (related articles by id, URL, file or text,
nearest vectors, explanations, which ranking is in force), over the index's data (rank.indexdata.IndexData, the
opened files) and the one ranker constructor (rank.wiring).

    from recommender import Index, build_index
    report = build_index("demo/", "demo-index")
    with Index.open("demo-index") as index:
        for hit in index.related("example-news.com/some-story", k=5):
            print(hit.score, hit.title, hit.url)

Asking by id or URL reads the stored vectors only; the model is loaded only to embed new text. What the index
holds (metadata, manifest, lexical index, vectors, ...) is `index.data`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import InputError
from ..embed.prepare import Preparation, combine, prepare
from ..ingest.article import Article
from .indexdata import IndexData
from .policy import Policy
from .results import Related, UnknownArticle  # noqa: F401 - importable from here, as they always were
from .signaltable import WEIGHTED_PARTS
from .topk import drop_rows
from . import wiring


class Index:
    """An opened index and the questions it answers. `data` is what it holds (rank.indexdata.IndexData)."""

    def __init__(self, data: IndexData):
        self.data = data
        self._rankers: dict = {}  # (the policy's [ranking], learned or not) -> its ranker, built once

    @classmethod
    def open(cls, folder: str | Path | None = None, *, preparation: Preparation | None = None,
             verify: bool | str = True) -> "Index":
        """Open an index (IndexData.open): refused if files are missing or corrupted, or if its text preparation
        differs."""
        return cls(IndexData.open(folder, preparation=preparation, verify=verify))

    def close(self) -> None:
        self.data.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.data)

    def info(self) -> dict:
        """What `recommender info` shows (IndexData.info)."""
        return self.data.info()

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
        info = self.data.get(ref)
        policy = self._policy(policy, k)
        if stored and not explain:
            from .storedlists import stored_links

            items = stored_links(self.data, info.row, policy, overrides)
            if items is not None:
                return self.related_items(items), "stored-list"
        cand = self.ranker(policy).score_rows(np.array([info.row]))[0]
        return self._links(cand, policy, overrides, explain), "computed"

    def related_to_article(self, article: Article, k: int | None = None, *, policy: Policy | None = None,
                           explain: bool = False) -> list[Related]:
        """Related articles for an article that may not be in the index (embedded with the index's model)."""
        if self.data.has(article.id):
            return self.related(article.id, k, policy=policy, explain=explain)
        prepared = prepare(article, self.data.preparation)
        vectors = self.data.embedder().encode(prepared.all_texts)  # the head and every window, as the index has
        vector = combine(vectors[0], vectors[1 + np.asarray(prepared.picked, dtype=np.int64)], self.data.preparation)
        from ..store.lexical import lexical_document

        language = self.data.lexical.language if self.data.lexical is not None else None
        return self._text_links(vector, lexical_document(article.title, article.body or article.excerpt, language),
                                self._policy(policy, k), explain, windows=vectors)

    def search(self, text: str, k: int | None = None, *, policy: Policy | None = None,
               explain: bool = False) -> list[Related]:
        """Articles closest to a free-text query (embedding and words, under the policy's weights)."""
        if not text.strip():
            raise InputError("empty search text")
        vectors = self.data.embedder().encode([text])
        return self._text_links(vectors[0], text, self._policy(policy, k), explain, windows=vectors)

    def nearest(self, vector: np.ndarray, k: int, exclude_rows: set[int] | None = None) -> list[Related]:
        """The k nearest stored vectors by cosine alone (no lexical part, no policy)."""
        excluded = exclude_rows or set()
        scores, rows = self.data.vectors.search(vector[None, :], k + len(excluded))
        hits = drop_rows(scores[0], rows[0], excluded, k)
        return self.related_items([(row, score, False, None) for row, score in hits])

    # --- the ranking ---------------------------------------------------------------------------------

    def ranker(self, policy: Policy | None = None, learned: bool = True):
        """The hybrid ranker for a policy's weights (built once per weights, rank.wiring.query_ranker), re-scored by
        the learned ranking when the policy uses it (learned=False: the default ranking, what training starts
        from)."""
        ranking = (policy or Policy()).ranking
        model = self.learned_model(policy) if learned else None
        key = (ranking, model is not None)
        if key not in self._rankers:
            self._rankers[key] = wiring.query_ranker(self.data, ranking, model)
        return self._rankers[key]

    def learned_model(self, policy: Policy | None = None):
        """The learned ranking the policy asks for, or None: the fixed weights (rank.wiring.learned_model)."""
        return wiring.learned_model(self.data, policy)

    def ranking_in_force(self, policy: Policy | None = None) -> str:
        """Which ranking scores this site's candidates under the policy, in words (rank.wiring.ranking_in_force)."""
        return wiring.ranking_in_force(self.data, policy)

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
        ordered = order_candidates(cand, self.data.rule_columns(), ranker.vectors, policy, overrides,
                                   query_vector=query_vector, limit=None if every else policy.links.k,
                                   standing=standing)
        return choose_links(ordered, policy, every=every)

    def _links(self, cand, policy: Policy, overrides: bool, explain: bool, query_vector=None,
               query_text: str | None = None) -> list[Related]:
        ranker = self.ranker(policy)
        chosen = self.link_list(cand, policy, self.data.overrides() if overrides else None,
                                query_vector=query_vector)
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
                if signals is None:  # those the learned ranking scored them by, else made here
                    from .learned import signal_matrix

                    signals = cand.signals if cand.signals is not None else signal_matrix(
                        cand, self.data.article_features(), self.data.link_graphs(model))
                parts["learned"] = model.contributions(signals[i], signals)
            items.append((link.row, link.score, link.pinned, parts))
        related = self.related_items(items)
        if explain:
            from .explain import explain_links

            explain_links(self.data, cand.query, related, query_vector=query_vector, query_text=query_text)
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
        infos = self.data.store.by_rows([row for row, *_ in items])
        out = []
        for row, score, pinned, parts in items:
            i = infos[row]
            out.append(Related(id=i.id, score=None if score != score else round(float(score), 6), title=i.title,
                               url=i.url, published=i.published, source=i.source, kind=i.kind, pinned=pinned,
                               topics=list(i.topics), authors=list(i.authors), page_type=i.page_type,
                               parts=parts))
        return out
