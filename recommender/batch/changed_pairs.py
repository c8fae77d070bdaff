"""The window values (window score, max-sim) of kept lists with the changed articles, for the pairs the learned
reach reads (window_batch.WindowSide), computed for those pairs alone.

The reach reads a kept list's window values with a changed article in two places: a changed article that owns a
window its query windows now retrieve (`ChangedWindows.added`: every changed window above a query window's
recorded floor) is scored for the new window pool (window_batch.follow_many, window_reach.follow), and a changed
member of any of its new pools is scored as a pair (`WindowSide.pair_values`). Both used to read the changed
articles' full window rows (WindowScores.rows: every changed window against every stored window), a cost that
grows with changed x n, so with n² for a fixed share of changes: 20% of the 60,000-article night's reach, and
10,000 x 1M values at 1M articles. Here the first set of pairs is known before any list is followed (the added
windows' owners); their values are computed at once, one product per changed article with the windows of the
lists that retrieve it (WindowScores.pairs with the changed article as the query, as its row computes them:
the same products, a run's sums in NumPy's order, equal to float rounding). Other pairs are computed when asked.
"""

from __future__ import annotations

import numpy as np

from ..common.blocks import ranges


class ChangedPairs:
    """Window values of (kept row q, changed article cols[c]) pairs: those of the changed articles that own an
    added window of q computed up front (`changed`: window_reach.ChangedWindows), any other on demand."""

    def __init__(self, windows, cols: np.ndarray, changed=None):
        self.windows, self.cols = windows, np.asarray(cols, np.int64)
        width = max(1, len(self.cols))
        self.width = width
        if changed is None or not len(changed.added_at):
            self.keys = np.zeros(0, np.int64)
            self.score, self.best = np.zeros(0, np.float32), np.zeros(0, np.float32)
            return
        j = np.searchsorted(changed.firsts, changed.added_at, side="right") - 1  # the kept list of each
        c = np.searchsorted(changed.cfirsts, changed.added_window, side="right") - 1  # the changed article of each
        keys = np.unique(np.asarray(changed.rest, np.int64)[j] * width + c)
        self.keys = keys
        self.score, self.best = self._computed(keys // width, keys % width)

    def _computed(self, qs: np.ndarray, cs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values of pairs (qs[i], cols[cs[i]]), one product per changed article."""
        score, best = np.empty(len(qs), np.float32), np.empty(len(qs), np.float32)
        order = np.argsort(cs, kind="stable")
        cuts = np.flatnonzero(np.diff(cs[order])) + 1
        for group in np.split(order, cuts) if len(order) else ():
            article = int(self.cols[cs[group[0]]])
            score[group], best[group] = self.windows.pairs(*self.windows.windows_of(article), qs[group])
        return score, best

    def _known(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each key sits among the computed ones, and whether it is there."""
        if not len(self.keys):
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return at, self.keys[at] == keys

    def values(self, qs: np.ndarray, cs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window score, max-sim) of pairs (qs[i], cols[cs[i]]) (cs: positions in cols)."""
        qs, cs = np.asarray(qs, np.int64), np.asarray(cs, np.int64)
        at, known = self._known(qs * self.width + cs)
        score, best = np.empty(len(qs), np.float32), np.empty(len(qs), np.float32)
        score[known], best[known] = self.score[at[known]], self.best[at[known]]
        if not known.all():
            score[~known], best[~known] = self._computed(qs[~known], cs[~known])
        return score, best

    def block(self, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(len(cols) x len(qs)) window scores and max-sims of the changed articles with rows qs: the computed
        pairs (those an added window brings to each row), NaN elsewhere (follow_many reads no other)."""
        qs = np.asarray(qs, np.int64)
        score = np.full((len(self.cols), len(qs)), np.nan, np.float32)
        best = np.full((len(self.cols), len(qs)), np.nan, np.float32)
        lo = np.searchsorted(self.keys, qs * self.width)
        hi = np.searchsorted(self.keys, (qs + 1) * self.width)
        e = np.repeat(np.arange(len(qs)), hi - lo)
        at = ranges(lo, hi - lo)  # each row's computed pairs
        cs = self.keys[at] % self.width
        score[cs, e], best[cs, e] = self.score[at], self.best[at]
        return score, best

