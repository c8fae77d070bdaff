"""The two-stage ranking's first stage: each query's candidates from indexes built for top-k, and each part's
values and z-statistics on those candidates alone, at a cost that does not follow the corpus size.

* lexical: the query's TF-IDF row retrieves its top-k documents from the posting lists (store.lextopk: exact
  MaxScore while its lists hold at most EXACT_POSTINGS postings, else the heads of impact-ordered lists, a bounded
  read); the candidates' cosines are exact (sparse dot products with their rows). The row's mean is exact by
  algebra (mean = q·μ, μ the corpus's mean TF-IDF row); its mean square is exact over the query's pool and
  measured on a fixed, seeded sample of rows for the rest (`stratified`).
* mention: the query's own row of the mention matrix (both directions) is sparse: read from its postings; its mean
  and deviation are exact (sum and sum of squares over n). Only its entries above a cut are candidates
  (`mention_pool`: at most MENTION_POOL_FACTOR x `depth`), so a page every other page names does not bring them
  all in; the others get their mention value when another pool brings them.
* window: each query window retrieves its nearest stored windows (exactly up to EXACT_WINDOW_SEARCH stored
  windows, else from the stored IVF index, store.windowann); their articles are scored exactly
  (recommender.rank.windows.WindowScores.pairs) and the best `depth` form the pool. Mean and mean square (of the
  window score and of max-sim) are exact over the pool and measured on the fixed sample for the rest.

On a corpus no larger than a sample, the sample is every row: the statistics are the full row's and the window
pool is the exact top of the window row. The errors of the estimates on MDN: docs/scale.md, "Two-stage ranking".
"""

from __future__ import annotations

import numpy as np

from .topk import sorted_unique, stable_order
from .windowsearch import ExactWindowSearch

LEXICAL_SAMPLE = 8192  # rows whose TF-IDF cosines give a lexical row's mean square (beyond its pool)
WINDOW_SAMPLE = 2048  # rows whose window scores give a window row's mean and mean square (beyond its pool)
SAMPLE_SEED = 20261205
EXACT_POSTINGS = 200_000  # a query whose terms' postings total more: lexical candidates from the lists' heads
IMPACT_BUDGET = 65_536  # postings read then (store.lextopk.ImpactTopK; shared by squared weight)
# up to this many stored windows (about 25,000 articles of MDN's shape) the window candidates come from an exact
# search (a few ms a query): its pools are an exact top-k, which the nightly reach needs to stay incremental
EXACT_WINDOW_SEARCH = 100_000
WINDOW_NEIGHBOURS = 1024  # stored windows retrieved per query (shared among its windows)
MIN_PER_WINDOW = 32  # at least this many per query window
# up to this many query windows in a block (a query by id), their products with the window sample convert the
# sample's 8-bit codes a block at a time (WindowScores.pairs_many); more (the batch's blocks) multiply its float copy
FEW_QUERY_WINDOWS = 64
# queries retrieved at once (a block: the batch, evaluation) from which their windows' articles come from a map of
# every stored window's article (WindowStage._owners), made once, rather than a binary search of the offsets each
OWNER_MAP = 16
PROBE_WINDOWS = 128  # query windows whose IVF lists WindowStage._probes finds at a time
MIN_MARGIN = 8  # windows retrieved beyond those a query window keeps, when a margin is asked (the nightly reach)
# a query's mention pool holds at most this many times a pool's depth (mention_pool): on MDN a quarter of it moved
# the learned ranking's recall@10 under the `new` protocol by -0.005, this by -0.002 (docs/scale.md)
MENTION_POOL_FACTOR = 4


def sample_rows(n: int, size: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """A fixed, seeded sample of `size` rows of n (every row when n <= size), sorted."""
    if n <= size:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)).astype(np.int64)


def _gather(indptr, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of every stored entry of `rows` in CSR order, the length of each row)."""
    begins = np.asarray(indptr[rows], dtype=np.int64)
    lengths = np.asarray(indptr[rows + 1], dtype=np.int64) - begins
    at = np.repeat(begins - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(
        int(lengths.sum()), dtype=np.int64)
    return at, lengths


def lexical_sample(tfidf: tuple, n: int, vocabulary: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The lexical sample's rows (sample_rows(n, LEXICAL_SAMPLE)) by term, from TF-IDF rows given as CSR arrays
    (indptr, indices, data): (sample size, where each term's entries start (vocabulary + 1, int64), each entry's
    sample position (int64), its value (float32)), each term's entries in sample order. Made at build and stored
    with the query arrays (rank.querydata): made in a query process, 0.05-0.1 s CPU, the sample's rows read from
    pages spread over the whole TF-IDF file (more of them as n grows)."""
    rows = sample_rows(n, LEXICAL_SAMPLE)
    indptr, indices, data = tfidf
    at, lengths = _gather(indptr, rows)
    terms = np.asarray(indices[at], dtype=np.int64)
    order = stable_order(terms)
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    starts = np.searchsorted(terms[order], np.arange(vocabulary + 1))
    return len(rows), starts, owner[order], np.asarray(data[at], dtype=np.float32)[order]


def stored_sample_fits(stored: tuple, n: int, vocabulary: int) -> bool:
    """Whether stored (starts, owner, values) of lexical_sample have the shape n articles and this vocabulary give
    (a file of another index version is refused by the manifest's checksums)."""
    starts, owner, values = stored
    return len(starts) == vocabulary + 1 and int(starts[-1]) == len(owner) == len(values) and \
        (not len(owner) or int(owner[-1]) < min(n, LEXICAL_SAMPLE))


class LexicalStage:
    """TF-IDF and mention parts from CSR arrays (`csr_arrays()` of a lexical index or its mapped arrays)."""

    def __init__(self, arrays: dict, n: int, vocabulary: int, matrix=None):
        """matrix: the same TF-IDF rows as a SciPy CSR matrix, when the caller has one (the batch's lexical index;
        a query by id imports no SciPy): `values` and `stats` then gather rows and multiply in SciPy's compiled
        loops, the same products added in the same order as the NumPy steps."""
        from ..store.lextopk import PostingsTopK

        self.n, self.vocabulary = n, vocabulary
        # plain array views of mapped files (no copy): NumPy's memmap subclass costs a wrapper on every lookup
        arrays = {name: tuple(np.asarray(a) for a in value) if isinstance(value, tuple) else
                  value if name == "mentions" else np.asarray(value) for name, value in arrays.items()}
        self.tfidf = arrays["tfidf"]  # (indptr, indices, data) docs x terms
        self.mentions = arrays["mentions"]  # both directions (store.bothways: M + Mᵀ by rows)
        self.topk = PostingsTopK(*arrays["postings"], n, arrays.get("postings_max"))
        self._arrays = arrays
        self._impact = None
        self._mean = arrays.get("tfidf_mean")
        self._sample = None
        self._matrix = matrix
        self._sample_matrix = None

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """A stored article's TF-IDF row: (terms, weights)."""
        indptr, indices, data = self.tfidf
        a, b = int(indptr[row]), int(indptr[row + 1])
        return np.asarray(indices[a:b], dtype=np.int64), np.asarray(data[a:b], dtype=np.float32)

    @property
    def mean(self) -> np.ndarray:
        """The corpus's mean TF-IDF row (float64, one value per term)."""
        if self._mean is None:
            indptr, indices, data = self.tfidf
            self._mean = np.bincount(np.asarray(indices), weights=np.asarray(data, dtype=np.float64),
                                     minlength=self.vocabulary) / max(1, self.n)
        return np.asarray(self._mean, dtype=np.float64)

    def _sample_postings(self):
        """The sample's rows by term (lexical_sample): stored with the index (mapped: a query reads its terms'
        entries alone), else made once."""
        if self._sample is None:
            stored = self._arrays.get("lexical_sample")
            if stored is not None and stored_sample_fits(stored, self.n, self.vocabulary):
                self._sample = (min(self.n, LEXICAL_SAMPLE), *stored)
            else:
                self._sample = lexical_sample(self.tfidf, self.n, self.vocabulary)
            self._sample_rows = sample_rows(self.n, LEXICAL_SAMPLE)
        return self._sample

    def values(self, terms: np.ndarray, weights: np.ndarray, rows: np.ndarray,
               known: tuple | None = None) -> np.ndarray:
        """Exact TF-IDF cosines of the query row with `rows`: float32 products of shared terms added in term
        order, as SciPy's sparse product adds them. known: (rows, their cosines) this method gave already (a row's
        cosine does not depend on the rows computed with it): those are not computed again."""
        if known is not None and len(known[0]) and len(rows):
            rows = np.asarray(rows, dtype=np.int64)
            order = np.argsort(known[0], kind="stable")
            done, cosines = np.asarray(known[0], np.int64)[order], np.asarray(known[1], np.float32)[order]
            at = np.minimum(np.searchsorted(done, rows), len(done) - 1)
            hit = done[at] == rows
            out = np.empty(len(rows), dtype=np.float32)
            out[hit] = cosines[at[hit]]
            out[~hit] = self.values(terms, weights, rows[~hit])
            return out
        out = np.zeros(len(rows), dtype=np.float32)
        if not len(terms) or not len(rows):
            return out
        dense = np.zeros(self.vocabulary, dtype=np.float32)
        dense[terms] = weights
        if self._matrix is not None:  # each row's products in its term order, a float32 sum from 0 (+0 elsewhere)
            return np.asarray(self._matrix[np.asarray(rows, dtype=np.int64)] @ dense, dtype=np.float32)
        indptr, indices, data = self.tfidf
        at, lengths = _gather(indptr, np.asarray(rows, dtype=np.int64))
        listed = indices[at]
        mine = np.zeros(self.vocabulary, dtype=bool)
        mine[terms] = weights != 0
        shared = np.flatnonzero(mine[listed])  # the query's terms among the rows' entries: a byte gathered each
        owner = np.repeat(np.arange(len(rows)), lengths)[shared]  # each shared entry's row
        np.add.at(out, owner, np.asarray(data[at[shared]], dtype=np.float32) * dense[listed[shared]])
        return out

    def stats(self, terms: np.ndarray, weights: np.ndarray, top: tuple | None = None) -> tuple[float, float]:
        """(mean, deviation) of the query's cosines over the corpus. The mean is exact (q·μ). The mean square is
        exact for `top` (the query's best rows and their cosines, which hold most of a TF-IDF row's weight) and
        measured on the sample for every other row; on a corpus no larger than the sample, both are exact."""
        if not len(terms):
            return 0.0, 0.0
        mean = float(np.dot(weights.astype(np.float64), self.mean[terms]))
        size, starts, owner, values = self._sample_postings()
        if self._matrix is not None:  # the same products added term after term into each sample row's sum
            scores = self.sample_matrix[np.asarray(terms, dtype=np.int64)].T @ np.asarray(weights, np.float64)
        else:
            at, lengths = _gather(starts, terms)  # the sample's entries of each query term
            scores = np.bincount(owner[at], weights=values[at].astype(np.float64) * np.repeat(weights, lengths),
                                 minlength=size)
        top_rows, top_scores = top if top is not None else (np.zeros(0, np.int64), np.zeros(0))
        return stratified(self.n, top_rows, top_scores, self._sample_rows, scores, mean)

    @property
    def sample_matrix(self):
        """The sample's rows by term as a SciPy CSR matrix (terms x sample rows, float64), made once."""
        if self._sample_matrix is None:
            from scipy.sparse import csr_matrix

            size, starts, owner, values = self._sample_postings()
            self._sample_matrix = csr_matrix((values.astype(np.float64), owner, starts),
                                             shape=(self.vocabulary, size))
        return self._sample_matrix

    def pool(self, terms: np.ndarray, weights: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(the `depth` best rows, their cosines, the cosine no other row exceeds). Exact top-k from the posting
        lists (MaxScore) while the query's lists hold at most EXACT_POSTINGS postings; beyond, candidates from the
        lists' heads (ImpactTopK: a bounded read, not exact) with the bound it proves; their cosines are then
        `values`' (`exact_pool` False), which a later `values` of the same query may be given (`known`)."""
        if not self.exact_pool(terms):
            rows, _, bound = self.impact.top_k(terms, weights, depth)
            return rows, self.values(terms, weights, rows), bound
        rows, scores = self.topk.top_k(terms, weights, depth)
        return rows, scores, float(scores[-1]) if len(rows) >= depth else 0.0  # an outsider shares no term: 0

    def exact_pool(self, terms: np.ndarray) -> bool:
        """Whether `pool` takes the exact top-k from the posting lists (their postings at most EXACT_POSTINGS)."""
        indptr = self.topk.indptr
        return int(np.sum(np.asarray(indptr[terms + 1], np.int64) - np.asarray(indptr[terms], np.int64))) <= \
            EXACT_POSTINGS

    @property
    def impact(self):
        """store.lextopk.ImpactTopK over the postings ordered by value (stored with the index, else made once)."""
        if self._impact is None:
            from ..store.lextopk import ImpactTopK, impact_order

            indptr = self._arrays["postings"][0]
            ordered = self._arrays.get("impacts") or impact_order(*self._arrays["postings"])
            self._impact = ImpactTopK(indptr, *ordered, self.n, IMPACT_BUDGET)
        return self._impact

    def mention_row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        return self.mentions.row(row)

    def mention_stats(self, values: np.ndarray) -> tuple[float, float]:
        v = values.astype(np.float64)
        mean = v.sum() / max(1, self.n)
        return mean, float(np.sqrt(max(0.0, (v * v).sum() / max(1, self.n) - mean * mean)))


class WindowStage:
    """Window candidates from the stored windows' ANN index, and window statistics from the sample."""

    def __init__(self, scores, ann=None, margin: float = 0.0):
        self.scores = scores  # recommender.rank.windows.WindowScores
        self._ann = ann
        # > 0: each query window also retrieves max(MIN_MARGIN, margin * per) windows beyond its `per`, recorded
        # (`near`) but not used as candidates: what the nightly reach follows a list's window pool with
        self.margin = margin
        self.sample = sample_rows(scores.n, WINDOW_SAMPLE)
        self.every_row = len(self.sample) == scores.n  # the sample's scores are the whole row
        self._sample_windows = None
        self._sample_codes = None
        self._owner_map = None  # each stored window's article (`_owners`), once a block asks

    @property
    def sample_windows(self) -> tuple:
        """The sample's stored windows, gathered once (WindowScores.gather)."""
        if self._sample_windows is None:
            self._sample_windows = self.scores.gather(self.sample)
        return self._sample_windows

    @property
    def ann(self):
        """The stored window index when it is approximate and the site has more than EXACT_WINDOW_SEARCH windows;
        else the exact search over the stored windows (NumPy: a query by id on a small site imports no FAISS)."""
        if isinstance(self._ann, ExactWindowSearch):
            return self._ann
        if not getattr(self._ann, "approximate", False) or len(self.scores.codes) <= EXACT_WINDOW_SEARCH:
            self._ann = ExactWindowSearch(self.scores)
        return self._ann

    def query_windows(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        return self.scores.windows_of(row)

    @property
    def sample_positions(self) -> tuple:
        """The sample's stored windows as positions (WindowScores.positions), made once."""
        if getattr(self, "_sample_positions", None) is None:
            self._sample_positions = self.scores.positions(self.sample)
        return self._sample_positions

    @property
    def sample_codes(self) -> tuple:
        """The sample's stored windows gathered once with their 8-bit codes (WindowScores.gather, convert=False: a
        quarter of the float copy's memory): what a query by id's few windows are multiplied with, without
        gathering the sample's windows from the mapped file at every query (0.3 ms a query at 1M articles)."""
        if self._sample_codes is None:
            self._sample_codes = self.scores.gather(self.sample, convert=False)
        return self._sample_codes

    @property
    def keeps_products(self) -> bool:
        """Whether `retrieve(..., products=True)` gives each query's similarities with every stored window (the
        exact search computes them all anyway)."""
        return isinstance(self.ann, ExactWindowSearch)

    def query_chunks(self, queries: list[tuple[np.ndarray, np.ndarray]]) -> list[slice]:
        """Consecutive runs of queries whose similarities with every stored window fit one product of the exact
        search (ExactWindowSearch.CELLS): what one `retrieve(..., products=True)` keeps at a time."""
        most = max(1, ExactWindowSearch.CELLS // max(1, len(self.scores.codes)))
        chunks, start, size = [], 0, 0
        for i, (codes, _) in enumerate(queries):
            if i > start and size + len(codes) > most:
                chunks.append(slice(start, i))
                start, size = i, 0
            size += len(codes)
        return chunks + [slice(start, len(queries))] if queries else chunks

    def scored(self, queries: list[tuple[np.ndarray, np.ndarray]]):
        """For each query in order: (what `retrieve` found for it, None when the sample is every row; its (window
        scores, max-sim) with the sample; a function giving its (window scores, max-sim) with given rows). With the
        exact search, both from the similarities it computed (the same numbers), a run of queries at a time."""
        if self.every_row or not self.keeps_products:
            few = sum(len(codes) for codes, _ in queries) <= FEW_QUERY_WINDOWS  # a query by id: no float copy
            sampled = self.scores.pairs_many(queries, self.sample_codes if few else self.sample_windows)
            found = [None] * len(queries) if self.every_row else self.retrieve(queries)
            for query, mine, sample in zip(queries, found, sampled):
                yield mine, sample, lambda rows, query=query: self.scores.pairs(*query, rows)
            return
        for span in self.query_chunks(queries):
            for *mine, products in self.retrieve(queries[span], products=True):
                yield (tuple(mine), self.scores.pairs_from(products, self.sample_positions),
                       lambda rows, products=products: self.scores.pairs_from(products, self.scores.positions(rows)))

    def retrieve(self, queries: list[tuple[np.ndarray, np.ndarray]], products: bool = False) -> list[tuple]:
        """For each query's windows (codes, scales): (the articles owning its nearest stored windows, the window
        score an article owning none of them cannot exceed, each query window's last found similarity: None
        when every stored window was found; what the nightly batch's reach bounds the next night with, and
        `near`: None, or with a margin asked, each query window's retrieved windows, margin included, as
        (their articles, similarities, count per query window, the similarity no other window exceeds: -inf when
        every one was found)). How many windows each query window retrieves depends on that query alone, so a
        query gets the same candidates alone or in a batch. products (with `keeps_products`): each query's tuple
        also ends with its similarities with every stored window (query windows x stored windows)."""
        margin = self.margin > 0
        if self._owner_map is None and len(queries) >= OWNER_MAP:
            self._owner_map = np.repeat(np.arange(self.scores.n, dtype=np.int32), self.scores.counts)
        wanted = [max(MIN_PER_WINDOW, WINDOW_NEIGHBOURS // max(1, len(codes))) for codes, _ in queries]
        extras = [max(MIN_MARGIN, int(per * self.margin)) if margin else 0 for per in wanted]
        sizes = [len(codes) for codes, _ in queries]
        found: list = [None] * len(queries)  # each query's (sims, ids) of its windows, and its products
        if products:  # one product for every query of the run, each query window asking its query's k
            sims, ids, every = self.ann.search_codes(np.concatenate([codes for codes, _ in queries]),
                                                     np.concatenate([scales for _, scales in queries]),
                                                     np.repeat(np.add(wanted, extras), sizes), products=True)
            starts = np.concatenate(([0], np.cumsum(sizes)))
            found = [(sims[a:b, :per + extra], ids[a:b, :per + extra], every[a:b])
                     for a, b, per, extra in zip(starts[:-1], starts[1:], wanted, extras)]
        else:  # a search for each group of queries asking as many windows
            groups: dict[int, list[int]] = {}
            for i, per in enumerate(wanted):
                groups.setdefault(per, []).append(i)
            probed = self._probes(queries) if len(groups) > 1 else None
            for per, members in groups.items():
                if probed is not None:  # the group's rows of the block's query windows and lists probed
                    vectors, lists, coarse, starts = probed
                    at = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in members])
                    sims, ids = self.ann.search(vectors[at], per + extras[members[0]], probes=(lists[at], coarse[at]))
                else:
                    sims, ids = self.ann.search_codes(np.concatenate([queries[i][0] for i in members]),
                                                      np.concatenate([queries[i][1] for i in members]),
                                                      per + extras[members[0]])
                start = 0
                for i in members:
                    found[i] = (sims[start:start + sizes[i]], ids[start:start + sizes[i]], None)
                    start += sizes[i]
        out: list = []
        for (sims, ids, every), per, extra in zip(found, wanted, extras):
            within, last = ids[:, :per], sims[:, :per][:, -1]
            # window ids in order: each binary search in `offsets` starts where the last one ended (a quarter of
            # the time of unordered ids at 1M articles)
            owners = sorted_unique(self._owners(np.sort(within[within >= 0])))
            everything = per >= self.ann.count
            near = self._near(ids, sims, per + extra) if margin else None
            out.append((owners, self._outsider_bound(within, last, per),
                        None if everything else np.where(within[:, -1] < 0, np.inf, last.astype(np.float64)), near)
                       + ((every,) if products else ()))
        return out

    def _probes(self, queries: list[tuple[np.ndarray, np.ndarray]]) -> tuple | None:
        """For a block of queries on an IVF index: (their windows as float32 vectors, the lists each probes and
        their similarities, where each query's windows start): found in one pass for every group that `retrieve`
        then searches (the coarse lists are each window's own, whatever it is found with: the same search); None
        for any other index."""
        if not getattr(self.ann, "approximate", False) or not hasattr(self.ann, "probes"):
            return None
        from ..store.windowann import code_vectors

        vectors = code_vectors(np.concatenate([codes for codes, _ in queries]),
                               np.concatenate([scales for _, scales in queries]))
        # PROBE_WINDOWS at a time: a block's thousand windows at once make products with every list (and their
        # order) of about 100 MB, which the allocator maps and returns on each call (page faults: 0.7 ms a list)
        found = [self.ann.probes(vectors[a:a + PROBE_WINDOWS]) for a in range(0, len(vectors), PROBE_WINDOWS)]
        lists, coarse = (np.concatenate(part) for part in zip(*found))
        return vectors, lists, coarse, np.concatenate(([0], np.cumsum([len(codes) for codes, _ in queries])))

    def _owners(self, window_ids: np.ndarray) -> np.ndarray:
        """Each stored window's article: a binary search of the offsets, or once a block of queries was retrieved
        (`retrieve`, OWNER_MAP queries or more) a map of every window's article, made once (4 bytes a window)."""
        if self._owner_map is not None:
            return self._owner_map[window_ids].astype(np.int64)
        return np.searchsorted(self.scores.offsets, window_ids, side="right") - 1

    def _near(self, ids: np.ndarray, sims: np.ndarray, asked: int) -> tuple:
        valid = ids >= 0
        # every stored window found: nothing below; fewer found than asked (an index's probes ran out): unknown
        floor = np.full(len(ids), -np.inf) if asked >= self.ann.count else \
            np.where(valid[:, -1], sims[:, -1].astype(np.float64), np.inf)
        return (self._owners(ids[valid]).astype(np.int32), sims[valid].astype(np.float32),
                valid.sum(axis=1).astype(np.int32), floor)

    def _outsider_bound(self, found: np.ndarray, last: np.ndarray, per: int) -> float:
        """The window score an article none of whose windows was found cannot exceed: each query window's best
        match with it is at most that window's last found similarity, so its forward half is at most their mean
        and its backward half at most their maximum. -inf when every stored window was found; +inf (unknown)
        when a search returned fewer windows than asked (an approximate index's probed lists ran out)."""
        if per >= self.ann.count:
            return -np.inf
        if (found[:, -1] < 0).any():
            return np.inf
        return float((last.astype(np.float64).mean() + last.max()) / 2)


def stratified(n: int, top_rows: np.ndarray, top_values: np.ndarray, sample_rows: np.ndarray,
               sample_values: np.ndarray, mean: float | None = None) -> tuple[float, float]:
    """(mean, deviation) of a query's row of n values, known exactly for its best rows (`top`, where a row's weight
    sits) and measured on a fixed sample for every other row; `mean` when it is known exactly. On a corpus no
    larger than the sample, exact."""
    return stratified_rows(n, top_rows, [top_values], sample_rows, [sample_values], mean)[0]


def stratified_rows(n: int, top_rows: np.ndarray, top_values: list, sample_rows: np.ndarray, sample_values: list,
                    mean: float | None = None) -> list[tuple[float, float]]:
    """`stratified` of several rows of one query whose best rows are the same (the window score and max-sim of
    its window pool): which sample rows are outside the pool is found once."""
    rest = ~_members(sample_rows, top_rows)
    others = n - len(top_rows)
    return [_stratified(n, others, np.asarray(top, dtype=np.float64), np.asarray(sample, dtype=np.float64)[rest],
                        mean) for top, sample in zip(top_values, sample_values)]


def _stratified(n: int, others: int, top: np.ndarray, values: np.ndarray, mean: float | None) -> tuple[float, float]:
    if mean is None:
        mean = (top.sum() + (others * values.mean() if len(values) else 0.0)) / max(1, n)
    squares = np.square(top).sum() + (others * np.mean(np.square(values)) if len(values) else 0.0)
    return float(mean), float(np.sqrt(max(0.0, squares / max(1, n) - mean * mean)))


def _members(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """np.isin(values, rows) for integer arrays, by binary search in the (few) sorted rows."""
    if not len(rows):
        return np.zeros(len(values), dtype=bool)
    rows = np.sort(rows)
    return rows[np.minimum(np.searchsorted(rows, values), len(rows) - 1)] == values


def mention_depth(depth: int) -> int:
    """How many entries of a query's mention row may join its candidates, for pools of `depth`."""
    return MENTION_POOL_FACTOR * depth


def mention_pool(cols: np.ndarray, values: np.ndarray, depth: int) -> tuple[np.ndarray, float]:
    """The entries of a query's mention row that join its candidates, and the value no other entry exceeds: those
    above the row's (depth+1)-th largest value (every entry of a row of at most `depth`, with a cut of 0: an article
    outside the row has no mention). At most `depth` entries (`mention_depth` of the pools' depth), and which ones
    depends on the values alone (no tie order), so the nightly reach knows an unchanged entry's side of the cut from
    the cut and its value."""
    if len(values) <= depth:
        return cols, 0.0
    cut = mention_cut(values, depth)
    return cols[values > cut], cut


def mention_cut(values: np.ndarray, depth: int) -> float:
    """The cut of a mention row's stored values (`mention_pool`): their (depth+1)-th largest, 0 with at most depth."""
    if len(values) <= depth:
        return 0.0
    return float(np.partition(values, len(values) - depth - 1)[len(values) - depth - 1])


def mention_cuts(rows: np.ndarray, depth: int) -> np.ndarray:
    """`mention_pool`'s cut of each row of a dense block of mention rows (len(rows) x n), as float64."""
    n = rows.shape[1]
    if n <= depth:
        return np.zeros(len(rows))
    return np.partition(rows, n - depth - 1, axis=1)[:, n - depth - 1].astype(np.float64)


def pool_of(rows: np.ndarray, values: np.ndarray, depth: int) -> tuple[np.ndarray, float, np.ndarray]:
    """The `depth` best of rows by value (ties: lower row), the lowest value among them, and their positions."""
    if not len(rows):
        return rows, -np.inf, np.zeros(0, np.int64)
    order = np.lexsort((rows, -values))[:depth]
    return rows[order], float(values[order].min()), order
