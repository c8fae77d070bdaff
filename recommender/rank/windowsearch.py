"""The exact window search: the k stored windows nearest to each query window by one matrix product with every
stored window (what the two-stage ranking's window candidates come from up to windowstage.EXACT_WINDOW_SEARCH
stored windows, where it costs a few ms a query), with the same interface as the stored IVF window index
(store.windowann.WindowANN.search_codes)."""

from __future__ import annotations

import numpy as np

from .topk import sorted_unique, top_columns


class ExactWindowSearch:
    """The k stored windows nearest to each query window, exactly: one matrix product of a group of query windows
    with every stored window, then a partial sort (the WindowANN interface: search_codes(codes, scales, k) ->
    (sims, ids)). Every similarity is computed as WindowScores does, exactly ((code · code) x stored scale x query
    scale): the same number in any grouping, so the nightly reach can compare the similarities it computes with
    those a search found (batch/window_reach.py)."""

    approximate = False
    CELLS = 16_000_000  # query windows x stored windows per product (64 MB of float32)

    def __init__(self, scores):
        self.scores = scores
        self.count = len(scores.codes)
        self._codes = None

    def search_codes(self, codes: np.ndarray, scales: np.ndarray, k, products: bool = False) -> tuple:
        """(sims, ids) of each query window's k nearest stored windows, best first (ties: the lower stored window
        first); k: one number, or one per query window (a window asking fewer than the most has ids -1 and sims
        -inf after its own). products: also every similarity computed (query windows x stored windows, float32),
        what WindowScores.pairs_from reads a query's pairs from."""
        if self._codes is None:
            self._codes = self.scores.exact_codes()
        codes = np.ascontiguousarray(codes, dtype=self.scores.exact)
        worth = np.asarray(scales, dtype=np.float32)

        def product(a, b):
            sims = (codes[a:b] @ self._codes.T).astype(np.float32, copy=False)  # whole numbers, exact
            sims *= self.scores.scales[None, :]
            sims *= worth[a:b, None]
            return sims

        return self._best(len(codes), k, product, products)

    def _best(self, count: int, k, product, products: bool = False) -> tuple:
        """Each query window's k best of `product(a, b)`, the similarities of query windows a..b-1 (and with
        `products`, those similarities)."""
        wanted = np.clip(np.broadcast_to(np.asarray(k, dtype=np.int64), (count,)), 1, max(1, self.count))
        width = int(np.clip(np.max(k, initial=1), 1, max(1, self.count)))
        sims_out = np.full((count, width), -np.inf, dtype=np.float32)
        ids_out = np.full((count, width), -1, dtype=np.int64)
        kept = []
        step = max(1, self.CELLS // max(1, self.count))
        for a in range(0, count, step):
            sims = product(a, a + step)
            here = wanted[a:a + step]
            for k in sorted_unique(here):
                rows = np.flatnonzero(here == k)
                part = sims if len(rows) == len(sims) else sims[rows]
                if k < self.count:
                    keep = top_columns(part, k)
                    top = np.take_along_axis(part, keep, 1)
                else:
                    keep = np.broadcast_to(np.arange(self.count), part.shape)
                    top = part
                order = np.lexsort((keep, -top), axis=1)
                sims_out[a + rows, :k] = np.take_along_axis(top, order, 1)
                ids_out[a + rows, :k] = np.take_along_axis(keep, order, 1)
            if products:
                kept.append(sims)
        if products:
            return sims_out, ids_out, kept[0] if len(kept) == 1 else np.concatenate(kept)
        return sims_out, ids_out
