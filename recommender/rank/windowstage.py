"""The two-stage ranking's window part (recommender.rank.candidates has the lexical and mention parts): each
query window retrieves its nearest stored windows (exactly up to EXACT_WINDOW_SEARCH stored windows, else from
the stored IVF index, store.windowann); their articles are scored exactly (`WindowScores.pairs`, in
recommender.rank.windows) and the best `depth` form the pool; the window score's and max-sim's statistics beyond
the pool come from a fixed, seeded sample of WINDOW_SAMPLE articles (candidates.sample_rows). Errors of the
estimates on MDN: docs/scale.md, "Two-stage ranking"."""

from __future__ import annotations

import numpy as np

from .candidates import sample_rows
from .topk import sorted_unique
from .windowsearch import ExactWindowSearch

WINDOW_SAMPLE = 2048  # rows whose window scores give a window row's mean and mean square (beyond its pool)
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
        every one was found), on an IVF index followed by the lists each query window probed and their
        similarities (what the nightly reach searches a kept list's windows with again)). How many windows each
        query window retrieves depends on that query alone, so a query gets the same candidates alone or in a
        batch. products (with `keeps_products`): each query's tuple
        also ends with its similarities with every stored window (query windows x stored windows)."""
        margin = self.margin > 0
        if self._owner_map is None and len(queries) >= OWNER_MAP:
            self._owner_map = np.repeat(np.arange(self.scores.n, dtype=np.int32), self.scores.counts)
        wanted = [max(MIN_PER_WINDOW, WINDOW_NEIGHBOURS // max(1, len(codes))) for codes, _ in queries]
        extras = [max(MIN_MARGIN, int(per * self.margin)) if margin else 0 for per in wanted]
        sizes = [len(codes) for codes, _ in queries]
        found: list = [None] * len(queries)  # each query's (sims, ids) of its windows, and its products
        probed = None
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
            probed = self._probes(queries) if len(groups) > 1 or margin else None
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
        for i, ((sims, ids, every), per, extra) in enumerate(zip(found, wanted, extras)):
            within, last = ids[:, :per], sims[:, :per][:, -1]
            # window ids in order: each binary search in `offsets` starts where the last one ended (a quarter of
            # the time of unordered ids at 1M articles)
            owners = sorted_unique(self._owners(np.sort(within[within >= 0])))
            everything = per >= self.ann.count
            near = self._near(ids, sims, per + extra) if margin else None
            if near is not None and probed is not None:  # the lists its windows probed (an IVF index)
                _, lists, coarse, starts = probed
                near += ((lists[starts[i]:starts[i + 1]].astype(np.int32), coarse[starts[i]:starts[i + 1]]),)
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
