"""An IVF index's coarse lists, exactly: each vector's m best lists (by inner product with the centroids, ties: the
lower list) and those products, the same whatever the batch a vector comes in, so that a window lands in the same
list and a query window probes the same lists with the same similarities in a night's search and a full run's
(store.windowann; the nightly reach follows window pools by that: batch/window_reach.py).

    coarse = Coarse(ivf.quantizer)
    lists, sims = coarse.best(vectors, m)          # m wide, best first
"""

from __future__ import annotations

import numpy as np

from .compiledscores import stored_products
from .compiledtopk import ACTIVE

COARSE_BLOCK = 1024  # query windows whose lists are found at a time
SCREEN_LISTS = 4_000  # lists from which the products are screened in float32 (Coarse: below, no faster)
FEW_QUERIES = 32  # up to this many query windows, the screen's product is laid out centroids x queries
SCREEN_CELLS = 262_144  # float64 centroid numbers gathered at a time for the screened lists' exact products (2 MB)


class Coarse:
    """Each window's `m` best lists of an IVF (by inner product with the centroids, ties: the lower list) and
    those products, exactly: float64 products rounded once to float32, so the same whatever the batch (a
    different order of float64 sums moves a product by about 1e-16, below float32's rounding). FAISS's own
    assignment multiplies in float32 by a route that depends on how many vectors come together (BLAS from 20
    on), so a window's list or a query's probed similarities could differ in the last bit between a night's
    search and a full run's.

    From SCREEN_LISTS lists on, the products with every centroid are screened in float32 (BLAS, 2-4 times faster
    than float64), and only the best 2m + 8 lists are multiplied again in float64 (at 8,000 lists and m = 8:
    0.10 against 0.16 ms a query window, the lists' selection included; at 2,275 lists both cost 0.035 ms).
    The screen cannot lose a list: a float32 product of d terms is within d·u/(1 - d·u)·|q|·|c| of the exact one
    (u = 2^-24, any order of the sums), so when the m-th exact product of the screened lists exceeds the best
    unscreened one's float32 product by more than that bound (and a float32 rounding), no unscreened list can be
    among the m best; a query where it does not (a near tie at the screen's edge) gets every product in
    float64."""

    def __init__(self, quantizer):
        self.c64 = np.ascontiguousarray(quantizer.reconstruct_n(0, quantizer.ntotal), dtype=np.float64)
        self.c32 = self.c64.astype(np.float32)  # the centroids are float32 numbers: the same values
        dim = self.c64.shape[1]
        unit = dim * 2.0 ** -24
        self.slack = unit / (1 - unit) * float(np.sqrt((self.c64 ** 2).sum(axis=1)).max(initial=0.0)) * 1.0001
        self._eight = None

    @property
    def eight(self) -> tuple:
        """The centroids in 8 bits for the screen of a few queries in a compiled loop (the window pairs' loop,
        compiledscores._window_products, then the scales in NumPy): (codes int8, each centroid's scale float32, the
        bound's two factors: A for |q|_2, B for |q|_1), made once.

        The screen's value of list l is fl(P x s_l), P a float32 sum (any order) of the products q_i x code_i, and
        the centroid it stands for is c~ = s_l x code. Its distance from the exact product q.c is at most
        |q.(c - c~)| + s_l |P - q.code| + u |P s_l| <= |q|_1 max_i |c_i - c~_i| + |q|_2 (u + (1 + u) g_d) |c~|,
        g_d = d u / (1 - d u), u = 2^-24 (the float32 sum's error in any order, with or without fused products)."""
        if self._eight is None:
            top = np.abs(self.c64).max(axis=1)
            scales = (np.where(top > 0, top, 1.0) / 127).astype(np.float32)
            codes = np.clip(np.rint(self.c64 / scales[:, None].astype(np.float64)), -127, 127).astype(np.int8)
            stood = codes.astype(np.float64) * scales[:, None].astype(np.float64)  # exact: 8 x 24 bits
            dim = self.c64.shape[1]
            u = 2.0 ** -24
            g = dim * u / (1 - dim * u)
            a = (u + (1 + u) * g) * float(np.sqrt((stood ** 2).sum(axis=1)).max(initial=0.0)) * 1.0001
            b = float(np.abs(self.c64 - stood).max(initial=0.0)) * 1.0001
            self._eight = (codes, scales, a, b)
        return self._eight

    def best(self, queries: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """(lists m wide int64, their similarities float32), best first."""
        nlist = len(self.c64)
        m = max(1, min(int(m), nlist))
        width = 2 * m + 8  # lists screened per query
        lists = np.empty((len(queries), m), dtype=np.int64)
        sims = np.empty((len(queries), m), dtype=np.float32)
        for a in range(0, len(queries), COARSE_BLOCK):
            block = np.asarray(queries[a:a + COARSE_BLOCK], dtype=np.float32)
            if nlist < SCREEN_LISTS or width * 16 > nlist:  # the float64 product costs about what a screen does
                lists[a:a + len(block)], sims[a:a + len(block)] = self._exact(block, m)
                continue
            cand, values, unsure = self._screened(block, m, width)
            lists[a:a + len(block)], sims[a:a + len(block)] = self._top(values, cand, m)
            if len(unsure):
                lists[a + unsure], sims[a + unsure] = self._exact(block[unsure], m)
        return lists, sims

    def _exact(self, queries: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The m best lists from every product in float64 (rounded to float32), ties: the lower list."""
        exact = (np.asarray(queries, dtype=np.float64) @ self.c64.T).astype(np.float32)
        return self._top(exact, np.broadcast_to(np.arange(len(self.c64)), exact.shape), m)

    @staticmethod
    def _top(values: np.ndarray, cand: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's m best of `values` (lists `cand`), best first, ties: the lower list, whatever the order of
        `cand` (a tie across the m-th place is settled by a stable sort of that row by list)."""
        if m < values.shape[1]:
            keep = np.argpartition(-values, m - 1, axis=1)[:, :m]
            mth = np.take_along_axis(values, keep, 1).min(axis=1)
            crossing = np.flatnonzero((values >= mth[:, None]).sum(axis=1) > m)
            for row in crossing:  # more lists tie with the m-th than there are places: the lower ones
                by_list = np.argsort(cand[row], kind="stable")
                keep[row] = by_list[np.argsort(-values[row][by_list], kind="stable")[:m]]
            cand, values = np.take_along_axis(cand, keep, 1), np.take_along_axis(values, keep, 1)
        order = np.lexsort((cand, -values), axis=1)
        return np.take_along_axis(cand, order, 1), np.take_along_axis(values, order, 1)

    def _screened(self, queries: np.ndarray, m: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the best `width` lists of each query by float32 products, their float64 products rounded to float32,
        the queries whose screen cannot be proved to hold their m best lists: class docstring)."""
        # a few queries (a query by id's windows): the centroids times the queries, turned after, is one pass over the
        # centroids' rows (0.27 against 0.44 ms a query window at 8,000 lists); any order of the float32 sums stays
        # within the bound the screen is proved with, so the lists found are the same
        q64 = np.asarray(queries, dtype=np.float64)
        norms = np.sqrt((q64 * q64).sum(axis=1))
        eight = ACTIVE["window_products"] if len(queries) <= FEW_QUERIES else None
        if eight is not None:  # a quarter of the centroids' bytes read, by a compiled loop: the same lists found,
            # with a wider bound (`eight`); at 1M articles, caches cold: 2.0 -> 0.6 ms a query by id's windows
            codes, scales, on_l2, on_l1 = self.eight
            screen = stored_products(eight, codes, None, queries)
            screen *= scales
            extra = on_l2 * norms + on_l1 * np.abs(q64).sum(axis=1)
        else:
            screen = np.ascontiguousarray((self.c32 @ queries.T).T) if len(queries) <= FEW_QUERIES else \
                queries @ self.c32.T
            extra = self.slack * norms
        kernel = ACTIVE["rows_top"]
        if kernel is not None:  # one pass a row in a compiled loop (store.compiledtopk): the same lists
            cand, best_out = np.empty((len(screen), width), np.int64), np.empty(len(screen), np.float32)
            kernel(np.ascontiguousarray(screen, dtype=np.float32), width, cand, best_out)
            outside = best_out.astype(np.float64)
        else:
            part = np.argpartition(-screen, width, axis=1)[:, :width + 1]
            outside = np.take_along_axis(screen, part[:, width:], 1)[:, 0].astype(np.float64)  # best unscreened
            cand = part[:, :width]
        values = np.empty(cand.shape, dtype=np.float32)
        step = max(1, SCREEN_CELLS // (width * self.c64.shape[1]))
        for b in range(0, len(queries), step):
            values[b:b + step] = np.einsum("qd,qkd->qk", q64[b:b + step], self.c64[cand[b:b + step]])
        mth = -np.partition(-values, m - 1, axis=1)[:, m - 1]
        bound = (outside + extra).astype(np.float32)
        # every unscreened list's rounded product is at most `bound` rounded up: the m-th must be above it
        unsure = np.flatnonzero(mth <= np.nextafter(bound, np.float32(np.inf)))
        return cand, values, unsure
