"""What the index version being replaced already holds for content it embedded: its article vectors and its windows'
8-bit codes, found by content hash (`Carried`), and the windows of a new version made from them and from the
articles embedded or read from the cache (`CarriedWindows`).

A night reads every article, but only a few have new content. The others' article vectors and window codes are
in the last version's files, written from the very numbers the cache holds (the vector cache's float32 vectors, and
its float16 windows quantised row by row: storing them again gives the same codes). Taking them from there costs a
gather instead of reading every vector and window back from the cache and quantising every window again (on MDN's
1% night: about 0.75 s of reading and 0.65 s of quantising). The result is the same, byte for byte
(tests/batch/test_carried.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class Carried:
    """The replaced version's arrays (memory-mapped) and, per content hash, one of its rows holding it."""

    rows: dict[str, int]  # content hash -> a row of the replaced version
    vectors: np.ndarray  # its n x dim float32 article vectors, as the cache gave them
    codes: np.ndarray  # its windows x dim int8 codes
    scales: np.ndarray  # its windows' float32 scales
    offsets: np.ndarray  # its n + 1 window offsets

    @classmethod
    def of(cls, hashes: Sequence[str], vectors: np.ndarray, codes: np.ndarray, scales: np.ndarray,
           offsets: np.ndarray) -> "Carried":
        rows: dict[str, int] = {}
        for row, content in enumerate(hashes):
            rows.setdefault(content, row)
        return cls(rows, vectors, codes, scales, offsets)

    def rows_of(self, hashes: Sequence[str]) -> np.ndarray:
        """Each hash's row in the replaced version, -1 where it holds none."""
        return np.fromiter((self.rows.get(h, -1) for h in hashes), dtype=np.int64, count=len(hashes))

    def windows(self, old_rows: np.ndarray, fresh: Sequence[np.ndarray], dim: int) -> "CarriedWindows":
        """The windows of articles whose replaced-version row is old_rows[i] (-1: not held there; their float16
        window blocks are `fresh`, in row order)."""
        held = old_rows >= 0
        old_offsets = np.asarray(self.offsets, dtype=np.int64)
        counts = np.empty(len(old_rows), dtype=np.int64)
        counts[held] = np.diff(old_offsets)[old_rows[held]]
        counts[~held] = [len(block) for block in fresh]
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        article = np.repeat(np.arange(len(old_rows)), counts)
        within = np.arange(int(offsets[-1]), dtype=np.int64) - offsets[article]
        source = np.where(held[article], old_offsets[np.maximum(old_rows, 0)][article] + within, -1)
        vectors = np.concatenate(fresh).astype(np.float16) if len(fresh) else np.zeros((0, dim), np.float16)
        return CarriedWindows(np.ascontiguousarray(vectors), offsets, source, self.codes, self.scales)


@dataclass
class CarriedWindows:
    """Every article's windows as `vectorize.Windows` says (article i owns windows offsets[i]:offsets[i + 1]), the
    windows of content the replaced version held as its codes (`source`: each window's place among `old_codes`,
    -1 for a window of `vectors`, the others' float16 windows stacked in order)."""

    vectors: np.ndarray
    offsets: np.ndarray
    source: np.ndarray
    old_codes: np.ndarray
    old_scales: np.ndarray

    def codes(self, quantize) -> tuple[np.ndarray, np.ndarray]:
        """(int8 codes, float32 scales) of every window: the held ones gathered, the others quantize(vectors)."""
        held = self.source >= 0
        codes = np.empty((len(self.source), self.vectors.shape[1]), dtype=np.int8)
        scales = np.empty(len(self.source), dtype=np.float32)
        codes[held] = self.old_codes[self.source[held]]
        scales[held] = self.old_scales[self.source[held]]
        codes[~held], scales[~held] = quantize(self.vectors)
        return codes, scales
