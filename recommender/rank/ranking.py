"""The hybrid score: dense cosine, the window-level score, TF-IDF cosine and mentions, each turned into a per-query
z-score over the whole corpus and mixed with the policy's weights.

A z-score says how far a candidate stands above the query's typical article, in standard deviations, so the
signals share one scale whatever their raw ranges.

Two stages (the default, `[ranking] retrieval = "two-stage"`): each query's candidates come from indexes built for
top-k, and only they are scored (recommender.rank.candidates): the `candidates` best by dense cosine (the vector
index), the articles owning the stored windows nearest to the query's windows (the best `candidates` of them by
window score), the `candidates` best by TF-IDF (posting lists), every article the query names or is named by, and
(for a site with tags) the `candidates` sharing the rarest tags with it. The statistics need no full row either:
the embedding's are exact (mean = q·μ and E[s²] = qᵀ(VᵀV/n)q), the TF-IDF mean is exact (q·μ), the mention row's
exact (a sparse row); the TF-IDF and window rows' mean squares (and the window mean) are exact over the query's
pool and measured on a fixed seeded sample of rows for the rest (errors on MDN: docs/scale.md). `retrieval = "exact"` scores every query against the whole corpus (full rows;
the reference the two-stage ranking is measured against). Everything outside the candidates ranks below them.

    ranker = HybridRanker(vectors, lexical, Ranking(dense=0.5, lexical=0.4, mention=0.1))
    for cand in ranker.score_rows(np.array([0, 1])):
        print(cand.rows[:5], cand.score[:5])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..store.ann import DecodedRows
from ..store.compiledscores import gather_rows
from ..store.compiledtopk import ACTIVE
from .corpusstats import CorpusStats, PoolBounds, Standing, dense_moments
from .exactranking import score_exact, used_stats, zscore
from .policy import Ranking
from .signaltable import WEIGHTED_PARTS
from .topk import sorted_unique, top_columns

if TYPE_CHECKING:  # a query by id scores over mapped arrays (querydata) and never imports SciPy
    from ..store.lexindex import LexicalIndex

POOL_MORE = 20  # rows a frozen ranking records past each dense and lexical pool (the nightly reach follows them)
QUERY_BLOCK = 256  # query rows ranked at a time (score_rows; the batch, evaluation and the editors' check)
MAX_BLOCK_CELLS = 40_000_000  # query rows x corpus size per block of dense score rows (about 160 MB)


@dataclass
class Candidates:
    """One query's candidates: rows, final scores (weighted z), and each part (raw value and z-score)."""

    query: int  # the query's row (-1 for text not in the index)
    rows: np.ndarray
    score: np.ndarray
    raw: dict[str, np.ndarray]
    z: dict[str, np.ndarray]
    pools: PoolBounds | None = None  # what the ranking found of the query's pools, when asked (the nightly batch)
    # the learned ranking's signals of these rows, one row each (learned.rescore): what a query's links show as
    # each signal's part, not computed a second time
    signals: np.ndarray | None = None

    def take(self, order: np.ndarray) -> "Candidates":
        return Candidates(self.query, self.rows[order], self.score[order],
                          {k: v[order] for k, v in self.raw.items()}, {k: v[order] for k, v in self.z.items()},
                          self.pools, None if self.signals is None else self.signals[order])


def block_size(n: int, wanted: int = QUERY_BLOCK) -> int:
    return max(1, min(wanted, MAX_BLOCK_CELLS // max(1, n)))


class HybridRanker:
    """Scores candidates for stored articles (by row) or for new text, with the policy's weights."""

    def __init__(self, vectors: np.ndarray, lexical: LexicalIndex | None, ranking: Ranking = Ranking(),
                 ann=None, frozen=None, rescorer=None, moments=None, tag_pool=None, windows=None, window_ann=None,
                 window_margin: float = 0.0):
        self.exact = ranking.retrieval == "exact"
        # rows decoded when read (store.ann.DecodedRows: a query on an approximate index reads a few hundred rows)
        # stay so, unless a product with every row is made (the exact reference, or no approximate index)
        rows_only = isinstance(vectors, DecodedRows) and not self.exact and ann is not None
        self.vectors = vectors if rows_only else np.ascontiguousarray(vectors, dtype=np.float32)
        self.n = len(self.vectors)
        self.lexical = lexical
        self.ranking = ranking
        self.ann = ann  # optional: anything with search(queries, depth); else exact dense candidates
        # optional: recommender.rank.windows.WindowScores over the same rows
        self.windows = windows if windows is not None and windows.count == self.n else None
        self.window_ann = window_ann  # optional: the stored window index (store.windowann); else built in memory
        self.window_margin = window_margin  # windowstage.WindowStage(margin=): windows recorded for the nightly reach
        weights = ranking.weights(windows=self.windows is not None)  # an index built without stored windows
        if lexical is None:
            weights = {"dense": 1.0}
        # the signal table's weighted parts (signaltable.WEIGHTED_PARTS), each with the policy's weight; every
        # other part in the z-mix (window_max) weighs 0, yet is summed: it sets the sum's float type
        self.weights = {part: weights.get(part, 0.0) for part in WEIGHTED_PARTS}
        # moments: (mean, second moment) precomputed at build (recommender.rank.querydata) or the frozen ones, else
        # computed when first read (`dense_moments`: VᵀV of every vector, 0.3 s at MDN's size)
        self._moments = moments if frozen is None else (frozen.mean_vector, frozen.second_moment)
        # optional: Candidates -> Candidates (the learned ranking, recommender.rank.learned.Rescorer), with
        # `many` (a list of stored queries' Candidates -> the same re-scored) when it has a block form
        self.rescorer = rescorer
        self.tag_pool = tag_pool  # optional: (query rows, depth) -> rows sharing a rare tag (signals.tag_pool)
        # the statistics to normalise with (the nightly batch's, kept from its last full rebuild); with them, each
        # query's candidates also carry what the ranking found of its pools (Candidates.pools)
        self.frozen: CorpusStats | None = frozen
        self._stages: dict = {}
        self.last_stats: list[dict] = []  # the last block's estimated statistics per query (scripts/measure_sample_stats.py)

    mean_vector = property(lambda self: self._dense_moments()[0])
    second_moment = property(lambda self: self._dense_moments()[1])

    def _dense_moments(self) -> tuple[np.ndarray, np.ndarray]:
        if self._moments is None:
            self._moments = dense_moments(self.vectors)
        return self._moments

    # --- dense part ------------------------------------------------------------------------------------

    def standing(self) -> Standing:
        """Each article's own average and standard deviation of its embedding cosine to the corpus (from the same
        moments as the dense z-score), made for the rows a list reads and kept: what the reverse z-score of a link
        reads (linking.py)."""
        if getattr(self, "_standing", None) is None:
            self._standing = Standing(self.vectors, self.mean_vector, self.second_moment)
        return self._standing

    def dense_stats(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # einsum's own loops, not BLAS: each query's figures are the same numbers whether it is scored alone (a
        # query) or in a block (the batch), so a stored list equals what a query computes
        mean = np.einsum("qd,d->q", queries, self.mean_vector)
        second = np.einsum("qd,de,qe->q", queries, self.second_moment, queries)
        std = np.sqrt(np.maximum(second - mean ** 2, 0.0))
        return mean[:, None], std[:, None]

    def dense_candidates(self, queries: np.ndarray, depth: int) -> np.ndarray:
        depth = min(self.n, depth)
        if self.ann is not None:
            return self.ann.search(queries, depth)[1]
        return top_columns(queries @ self.vectors.T, depth)

    def dense_pools(self, queries: np.ndarray, depth: int, more: int) -> tuple:
        """(dense_candidates, and each query's next `more` rows of its row after them with their cosines, best first
        (ties: lower row), as (rows, values); None each without `more`). top_columns takes the lowest columns of
        the values tied at its k-th, so the `depth` best of its `depth + more` are its `depth`."""
        if not more or self.ann is not None or self.n <= depth:
            return self.dense_candidates(queries, depth), [None] * len(queries)
        scores = queries @ self.vectors.T
        wide = top_columns(scores, min(self.n, depth + more))
        values = np.take_along_axis(scores, wide, axis=1)
        order = np.lexsort((wide, -values))  # each row by value, then column
        wide, values = np.take_along_axis(wide, order, axis=1), np.take_along_axis(values, order, axis=1)
        return wide[:, :depth], [(rows.astype(np.int64), vals.astype(np.float32))
                                 for rows, vals in zip(wide[:, depth:], values[:, depth:])]

    # --- the two stages' parts -------------------------------------------------------------------------

    def lexical_stage(self):
        """recommender.rank.candidates.LexicalStage over the lexical index's arrays (made once)."""
        if "lexical" not in self._stages:
            from .candidates import LexicalStage

            # a loaded lexical index's own SciPy matrix; never asked of a mapped one (a query by id), which would load
            # the full index for it
            matrix = vars(self.lexical).get("tfidf")
            self._stages["lexical"] = LexicalStage(self.lexical.csr_arrays(), self.n, self.lexical.vocabulary_size,
                                                   matrix=matrix)
        return self._stages["lexical"]

    def window_stage(self):
        if "window" not in self._stages:
            from .windowstage import WindowStage

            self._stages["window"] = WindowStage(self.windows, self.window_ann, self.window_margin)
        return self._stages["window"]

    # --- scoring ---------------------------------------------------------------------------------------

    def score_rows(self, rows: np.ndarray) -> list[Candidates]:
        """Candidates of stored articles, best first, the article itself excluded."""
        out: list[Candidates] = []
        rows = np.asarray(rows, dtype=np.int64)
        step = block_size(self.n) if self.exact else QUERY_BLOCK
        for start in range(0, len(rows), step):
            block = rows[start:start + step]
            if not self.exact:
                lexical = [self.lexical_stage().row(int(r)) for r in block] if self.uses("lexical") else None
                mention = [self.lexical_stage().mention_row(int(r)) for r in block] if self.uses("mention") \
                    else None
                window = [self.windows.windows_of(int(r)) for r in block] if self.uses("window") else None
                out.extend(self._two_stage(self.vectors[block], block, lexical, mention, window))
                continue
            lexical = self.lexical.tfidf_rows(block) if self.uses("lexical") else None
            mention = self.lexical.mention_rows(block) if self.uses("mention") else None
            window = self.windows.rows(block, with_max=True) if self.uses("window") else None
            out.extend(score_exact(self, self.vectors[block], block, lexical, mention, window))
        return out

    def score_text(self, vector: np.ndarray, document: str | None, exclude: set[int] = frozenset(),
                   windows: np.ndarray | None = None) -> Candidates:
        """Candidates for new text (its embedding, its window vectors for the window part and its words for the
        lexical part); no mention part."""
        query = np.asarray(vector, np.float32)[None, :]
        use_lexical = self.uses("lexical") and bool(document)
        use_window = self.uses("window") and windows is not None and len(windows)
        if self.exact:
            lexical = self.lexical.tfidf_for_text(document)[None, :] if use_lexical else None
            window = self.windows.text_rows(windows) if use_window else None
            cand = score_exact(self, query, np.array([-1]), lexical, None, window)[0]
        else:
            lexical = window = None
            if use_lexical:
                row = self.lexical.transform(document)
                lexical = [(np.asarray(row.indices, np.int64), np.asarray(row.data, np.float32))]
            if use_window:
                from ..store.windowfiles import quantize

                codes, scales = quantize(np.asarray(windows, np.float32))
                window = [(codes.astype(self.windows.exact), scales)]
            cand = self._two_stage(query, np.array([-1]), lexical, None, window)[0]
        keep = np.array([r not in exclude for r in cand.rows], dtype=bool)
        return cand.take(np.flatnonzero(keep))

    def uses(self, part: str) -> bool:
        """Whether the score has this part (lexical, mention, window): its data is there and its weight > 0."""
        if part == "window":
            return self.windows is not None and self.weights.get(part, 0) > 0
        return self.lexical is not None and self.weights.get(part, 0) > 0 and self.lexical.count == self.n

    def _two_stage(self, queries: np.ndarray, query_rows: np.ndarray, lexical: list | None, mention: list | None,
                   window: list | None) -> list[Candidates]:
        """The candidates of a block of queries from the retrieval indexes, each part computed on them alone.
        lexical: each query's TF-IDF row (terms, weights); mention: its mention row (columns, values); window:
        its windows (codes, scales)."""
        from .candidates import mention_depth, mention_pool, pool_of, stratified_rows

        depth = self.ranking.candidates + 1
        dense_mean, dense_std = self.dense_stats(queries)
        # the nightly reach (a frozen ranking) also records the next POOL_MORE of the dense and lexical rows
        more = POOL_MORE if self.frozen is not None and self.ann is None else 0
        dense_cands, dense_more = self.dense_pools(queries, depth, more)
        tagged = self.tag_pool(query_rows, depth) if self.tag_pool is not None and query_rows[0] >= 0 else None
        stage = self.window_stage() if window is not None else None
        # each query's window candidates, its window scores with the sample, and how to score it with other rows
        windowed = stage.scored(window) if window is not None else None
        lex = self.lexical_stage() if lexical is not None or mention is not None else None
        stats: dict[str, list] = {}
        per_query = []
        for i, q in enumerate(query_rows):
            pool = [dense_cands[i]]
            if tagged is not None:
                pool.append(tagged[i])
            bounds = {}
            if lexical is not None:
                terms, weights = lexical[i]
                rows, scores, bounds["lexical"], bounds["lexical_more"] = lex.pool(terms, weights, depth, more)
                bounds["lexical_pool"] = rows
                # the lists' heads' pool has its cosines from `values`: not computed again for the candidates
                lex_known = None if lex.exact_pool(terms) else (rows, scores)
                pool.append(rows)
                stats.setdefault("lexical", []).append(lex.stats(terms, weights, (rows, scores)))
            if mention is not None:
                cols, values = mention[i]
                order = np.argsort(cols, kind="stable")
                mention_row = (cols[order], values[order])
                members, bounds["mention"] = mention_pool(*mention_row, mention_depth(depth))
                pool.append(members)
                stats.setdefault("mention", []).append(lex.mention_stats(values))
            scored = None
            if window is not None:
                found, (sample_score, sample_max), pairs = next(windowed)
                if found is None:  # a corpus no larger than the sample: every article scored, every window "found"
                    owners, outside, lasts, near = stage.sample, -np.inf, None, None
                    scored = known = (owners, sample_score, sample_max)
                else:
                    # one product for the window owners and every other candidate: a row's numbers do not depend
                    # on the rows scored with it (WindowScores.pairs)
                    owners, outside, lasts, near = found
                    every = sorted_unique(np.concatenate([owners, *pool]))
                    every = every[every >= 0]
                    known = (every, *pairs(every))
                    at = np.searchsorted(every, owners)
                    scored = (owners, known[1][at], known[2][at])
                rows_pool, lowest, at = pool_of(owners, scored[1], depth)
                pool.append(rows_pool)
                sample = stage.sample  # the pool's values exact, the rest's from the sample
                window_stats, max_stats = stratified_rows(self.n, rows_pool, [scored[1][at], scored[2][at]],
                                                          sample, [sample_score, sample_max])
                stats.setdefault("window", []).append(window_stats)
                stats.setdefault("window_max", []).append(max_stats)
                bounds["window"] = max(lowest, outside) if len(owners) > depth else outside
                bounds["window_record"] = (lasts, (rows_pool, *scored), near)  # for the nightly reach
            cand = sorted_unique(np.concatenate(pool))
            cand = cand[(cand >= 0) & (cand != q)]
            raw = {"dense": gather_rows(ACTIVE["gather_rows"], self.vectors, cand) @ queries[i]}
            if window is not None:  # every candidate scored already (with the owners, or in the sample)
                rows, score, best = known
                at = np.searchsorted(rows, cand)
                raw["window"], raw["window_max"] = score[at], best[at]
            if lexical is not None:
                raw["lexical"] = lex.values(*lexical[i], cand, known=lex_known)
            if mention is not None:
                cols, values = mention_row
                raw["mention"] = np.zeros(len(cand), np.float32)
                if len(cols):
                    at = np.minimum(np.searchsorted(cols, cand), len(cols) - 1)
                    raw["mention"] = np.where(cols[at] == cand, values[at], 0.0).astype(np.float32)
            per_query.append((cand, raw, bounds))
        self.last_stats = [{part: values[i] for part, values in stats.items()} for i in range(len(query_rows))]
        z_stats = {}
        for part, values in stats.items():
            mean = np.array([[m] for m, _ in values], dtype=np.float32)
            std = np.array([[d] for _, d in values], dtype=np.float32)
            if self.frozen is not None:
                mean, std = self.frozen.row_stats(part, query_rows, mean, std)
            z_stats[part] = (mean, std)
        results = []
        for i, (q, (cand, raw, bounds)) in enumerate(zip(query_rows, per_query)):
            z = {"dense": zscore(raw["dense"], dense_mean[i], dense_std[i])}
            for part in ("window", "window_max", "lexical", "mention"):
                if part in raw:
                    z[part] = zscore(raw[part], z_stats[part][0][i], z_stats[part][1][i])
            pools = None
            if self.frozen is not None:
                pools = PoolBounds(dense=float((self.vectors[dense_cands[i]] @ queries[i]).min()),
                                   lexical=bounds.get("lexical"), window=bounds.get("window"),
                                   mention=bounds.get("mention"),
                                   window_record=bounds.get("window_record"),
                                   tops=(cand, raw, {"dense": dense_cands[i], "lexical": bounds.get("lexical_pool")},
                                         {"dense": dense_more[i], "lexical": bounds.get("lexical_more")}),
                                   stats=used_stats(z_stats, i))
            results.append(self.finish(q, cand, raw, z, pools, rescore=False))
        if self.rescorer is None:
            return results
        if query_rows[0] >= 0 and hasattr(self.rescorer, "many"):  # stored articles: the block's signals at once
            return self.rescorer.many(results)
        return [self.rescorer(result) for result in results]

    def finish(self, q: int, cand: np.ndarray, raw: dict, z: dict, pools: PoolBounds | None = None,
               rescore: bool = True) -> Candidates:
        """The weighted z-mix of one query's candidates, best first (ties: lower row), re-scored by the learned
        ranking when there is one (and `rescore`)."""
        total = sum(self.weights.get(name, 0.0) * z[name] for name in z)
        norm = sum(self.weights.get(name, 0.0) for name in z)
        score = (total / norm).astype(np.float32)
        order = np.lexsort((cand, -score))
        result = Candidates(int(q), cand, score, raw, z, pools).take(order)
        return self.rescorer(result) if self.rescorer is not None and rescore else result
