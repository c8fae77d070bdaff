"""The nightly reach's record of each list's window retrieval (recommender.batch.window_reach): per row, the last
similarity each query window found (or EXACT / UNKNOWN / EVERYTHING), its window, dense and lexical pools, and what
its query windows retrieved with the margin (`near`), as the two-stage ranking left them or a kept list carries them
over; kept in the lists state (`arrays`, `load`)."""

from __future__ import annotations

import numpy as np

EXACT, UNKNOWN, EVERYTHING = -2, -1, 0  # lasts codes: a full row's top (retrieval "exact"), unknown, all found

FIELDS = {"window": (("rows", np.int32), ("score", np.float32), ("best", np.float32)),  # window pool
          "dense": (("rows", np.int32), ("values", np.float32)),  # dense and lexical pools (pool_follow)
          "lexical": (("rows", np.int32), ("values", np.float32)),
          # the rows after each dense and lexical pool, best first, as the ranking (ranking.POOL_MORE) or a
          # followed pool (pool_follow) left them: every row outside the pool and these is after them
          "dense_more": (("rows", np.int32), ("values", np.float32)),
          "lexical_more": (("rows", np.int32), ("values", np.float32))}
NEAR_FIELDS = (("rows", np.int32), ("sims", np.float32), ("counts", np.int32), ("floor", np.float64))  # Record.near


class Record:
    """Per row: its lasts (an array, or EXACT / UNKNOWN / EVERYTHING) and its pools (`tables`: the window pool's
    rows, window scores and max-sims; the dense and lexical pools' rows and values), as the ranker left them or
    a kept list carries them over. Pool rows are in the current numbering (removed: -2)."""

    def __init__(self, n: int):
        self.lasts: dict[int, object] = {}
        self.tables: dict[str, dict[int, tuple]] = {name: {} for name in FIELDS}
        self.pools, self.tops = self.tables["window"], {k: self.tables[k] for k in ("dense", "lexical")}
        self.more = {k: self.tables[f"{k}_more"] for k in ("dense", "lexical")}
        # per row, what its query windows retrieved with the margin: (articles, similarities, count per query
        # window, floor per query window: no other window is nearer), each query window's best first
        self.near: dict[int, tuple] = {}
        # per row on an IVF window index, the lists each of its query windows probed and their similarities (each
        # a function of the window's vector under the index's training, which a night keeps: window_reach.
        # ChangedWindows searches a kept list's windows again with them, not with every list's centroid)
        self.probes: dict[int, tuple] = {}
        self.n = n
        self.key: str | None = None  # the approximate window index's training key the lists were ranked with

    def record(self, row: int, lasts, pool, near=None) -> None:
        self.lasts[row] = EXACT if isinstance(lasts, str) else (EVERYTHING if lasts is None else
                                                                  np.asarray(lasts, np.float64).copy())
        if near is None:
            self.near.pop(row, None)
        else:
            self.near[row] = near[:4]
        if near is not None and len(near) > 4:
            self.probes[row] = near[4]
        else:
            self.probes.pop(row, None)
        if pool is None:
            self.pools.pop(row, None)
        else:
            rows, owners, score, best = pool
            at = np.searchsorted(owners, rows)
            self.pools[row] = (np.asarray(rows, np.int64), score[at].astype(np.float32), best[at].astype(np.float32))

    def record_tops(self, row: int, tops) -> None:
        """The dense and lexical pools of a list the two-stage ranking ranked (None: not known)."""
        for mine in (*self.tops.values(), *self.more.values()):
            mine.pop(row, None)
        if tops is None:
            return
        cand, raw, pools, more = tops
        for name, rows in pools.items():
            if rows is None or name not in raw:
                continue
            rows = np.asarray(rows, np.int64)
            rows = rows[rows >= 0]
            at = np.minimum(np.searchsorted(cand, rows), max(len(cand) - 1, 0))
            found = (cand[at] == rows) if len(cand) else np.zeros(len(rows), dtype=bool)
            values = np.where(found, raw[name][at] if len(cand) else 0.0, np.inf)  # the query itself: first
            self.tops[name][row] = (rows, values.astype(np.float32))
            if more.get(name) is not None:
                self.more[name][row] = (np.asarray(more[name][0], np.int64), np.asarray(more[name][1], np.float32))

    def arrays(self, keep_pools: bool) -> dict:
        """The state's arrays (np.savez): the lasts always, the pools for a learned ranking or an approximate
        window search (`key`)."""
        codes = np.full(self.n, UNKNOWN, dtype=np.int64)
        values = []
        for row in range(self.n):
            lasts = self.lasts.get(row, UNKNOWN)
            if isinstance(lasts, np.ndarray):
                codes[row] = len(lasts)
                values.append(lasts)
            else:
                codes[row] = lasts
        out = {"wlast_len": codes, "wlast": np.concatenate(values) if values else np.zeros(0)}
        if self.key is not None:
            out["wann_key"] = np.frombuffer(self.key.encode(), dtype=np.uint8)
        keep_pools = keep_pools or self.key is not None  # an approximate window search: pools are followed
        for name, table in self.tables.items() if keep_pools else ():
            rows = sorted(table)
            lengths = np.full(self.n, -1, dtype=np.int64)
            lengths[rows] = [len(table[r][0]) for r in rows]
            out[f"pool_{name}_len"] = lengths
            for k, (field, kind) in enumerate(FIELDS[name]):
                out[f"pool_{name}_{field}"] = np.concatenate([table[r][k] for r in rows], dtype=kind,
                                                             casting="unsafe") if rows else np.zeros(0, kind)
        if keep_pools:
            rows = sorted(self.near)
            lengths = np.full(self.n, -1, dtype=np.int64)
            lengths[rows] = [len(self.near[r][2]) for r in rows]
            out["near_len"] = lengths
            for k, (field, kind) in enumerate(NEAR_FIELDS):
                out[f"near_{field}"] = np.concatenate([self.near[r][k] for r in rows], dtype=kind,
                                                      casting="unsafe") if rows else np.zeros(0, kind)
            out.update(self._probe_arrays())
        return out

    def _probe_arrays(self) -> dict:
        """`probes` as arrays: per row its query windows (-1: none recorded), then every window's lists and
        similarities, one row of nprobe each (the widest recorded; a narrower row, from an index with fewer lists
        probed, is not kept)."""
        width = max((len(lists[0]) for lists, _ in self.probes.values() if len(lists)), default=0)
        rows = [r for r in sorted(self.probes) if self.probes[r][0].shape[1:] == (width,)]
        lengths = np.full(self.n, -1, dtype=np.int64)
        lengths[rows] = [len(self.probes[r][0]) for r in rows]
        lists = np.concatenate([self.probes[r][0] for r in rows]).astype(np.int32) if rows else \
            np.zeros((0, width), np.int32)
        sims = np.concatenate([self.probes[r][1] for r in rows]).astype(np.float32) if rows else \
            np.zeros((0, width), np.float32)
        return {"probe_len": lengths, "probe_lists": lists, "probe_sims": sims}

    @classmethod
    def load(cls, state: dict, prev: np.ndarray, same: np.ndarray) -> "Record":
        """The records of the kept rows (`same`, their old rows `prev`); pool rows renumbered (removed: -2)."""
        out = cls(len(prev))
        kept = np.flatnonzero(same)
        if "wlast_len" not in state:
            return out
        codes = state["wlast_len"]
        starts = np.concatenate(([0], np.cumsum(np.maximum(codes, 0))))
        wlast = np.array(state["wlast"], dtype=np.float64)  # one copy; each row's lasts a view of it
        for row, p in zip(kept.tolist(), prev[kept].tolist()):
            out.lasts[row] = wlast[starts[p]:starts[p + 1]] if codes[p] > 0 else int(codes[p])
        renumber = np.full(len(codes), -2, dtype=np.int64)
        renumber[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
        same_rows = bool(np.array_equal(renumber, np.arange(len(codes))))  # nothing added or removed before

        def renumbered(rows: np.ndarray, kind) -> np.ndarray:
            if same_rows and (not len(rows) or rows.min() >= 0):
                return rows.astype(kind, copy=False)
            return renumber[rows.astype(np.int64)].astype(kind)

        # each column converted (and its rows renumbered) once, a row's entries are views of it: the same values
        # and types as converted row by row
        for name, table in out.tables.items():
            if f"pool_{name}_len" not in state:
                continue
            sizes = state[f"pool_{name}_len"]
            starts = np.concatenate(([0], np.cumsum(np.maximum(sizes, 0))))
            first, *rest = [state[f"pool_{name}_{field}"] for field, _ in FIELDS[name]]
            columns = [renumbered(first, np.int64), *(c.astype(np.float32, copy=False) for c in rest)]
            for row, p in zip(kept.tolist(), prev[kept].tolist()):
                if sizes[p] >= 0:
                    a, b = starts[p], starts[p + 1]
                    table[row] = tuple(c[a:b] for c in columns)
        if "near_len" in state:
            windows = state["near_len"]
            w_starts = np.concatenate(([0], np.cumsum(np.maximum(windows, 0))))
            counts = state["near_counts"].astype(np.int64)
            e_starts = np.concatenate(([0], np.cumsum(counts)))
            rows = renumbered(state["near_rows"], np.int32)
            sims = state["near_sims"].astype(np.float32, copy=False)
            floors = state["near_floor"].astype(np.float64, copy=False)
            counts32 = state["near_counts"].astype(np.int32, copy=False)
            for row, p in zip(kept.tolist(), prev[kept].tolist()):
                if windows[p] >= 0:
                    a, b = w_starts[p], w_starts[p + 1]
                    e, f = e_starts[a], e_starts[b]
                    out.near[row] = (rows[e:f], sims[e:f], counts32[a:b], floors[a:b])
        if "probe_len" in state:
            windows = state["probe_len"]
            starts = np.concatenate(([0], np.cumsum(np.maximum(windows, 0))))
            lists, sims = state["probe_lists"], state["probe_sims"]
            for row, p in zip(kept.tolist(), prev[kept].tolist()):
                if windows[p] >= 0:
                    out.probes[row] = (lists[starts[p]:starts[p + 1]], sims[starts[p]:starts[p + 1]])
        return out
