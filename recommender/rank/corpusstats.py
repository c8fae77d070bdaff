"""The interface between a ranking and the nightly batch (recommender.batch.incremental): the corpus statistics a
ranking normalises with, and what it found of each query's candidate pools.

The batch keeps the statistics of its last full rebuild, so that the score of a pair depends on the two articles
alone, and records each list's pool boundaries to tell the next night which lists a change can reach. The ranking
reads the first through `CorpusStats` (which the batch's `Frozen` implements) and returns the second with each
query's candidates (`Candidates.pools`, a `PoolBounds`); it never writes into the batch's objects.

`Standing` is the other statistic a list reads of the corpus: each linked article's own average and spread of its
embedding cosine to every article (the reverse z-score of linking.reverse_z), made for the rows asked only. Both
read the corpus's embedding moments (`dense_moments`, `dense_moments_of`): its mean vector and VᵀV/n."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..common.blocks import GRAM_BLOCK, gram64


class CorpusStats(Protocol):
    """Statistics to normalise with instead of the corpus's own (HybridRanker(frozen=...))."""

    mean_vector: np.ndarray  # the embeddings' mean (d)
    second_moment: np.ndarray  # their second moment (d x d)

    def row_stats(self, part: str, rows: np.ndarray, mean: np.ndarray,
                  std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each query row's mean and deviation of a part's scores (`part`: "window", "window_max", "lexical" or
        "mention"; `mean`, `std`: rows x 1, as computed now): the kept ones where known, else those given. A
        read: the statistics a ranking used come back with its candidates (PoolBounds.stats)."""


@dataclass
class PoolBounds:
    """What a ranking found of one query's candidate pools, for the nightly reach: the weakest member of the dense,
    lexical and window pools and the mention pool's cut (None: no such part), under the two-stage ranking its
    window retrieval and its dense and lexical pools, and the row statistics it normalised with."""

    dense: float
    lexical: float | None
    window: float | None = None
    # the value no mention-row entry outside the mention pool exceeds (candidates.mention_pool; 0: the whole row is
    # in the pool); None: no mention part
    mention: float | None = None
    # (each query window's last similarity, (pool rows, owners, window scores, max-sims), the recorded margin:
    # windowstage.WindowStage.retrieve); None: the window pool is the top of a full row, or no window part
    window_record: tuple | None = None
    tops: tuple | None = None  # (candidates, their raw values, {"dense": pool rows, "lexical": pool rows})
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # part -> (mean, deviation) it used


class Standing:
    """Each article's own average and standard deviation of its embedding cosine to the corpus (from the corpus's
    mean vector and second moment, as the dense z-score), what the reverse z-score of a link reads
    (linking.reverse_z). Made for the rows asked and kept: a list reads a few dozen rows, and making every row's
    costs n x d² (0.35 s CPU at 80,000 articles, seconds at 1M: a fresh process's first query paid it).

    A row's figures are the same numbers whichever rows are asked with it (what a query computes equals what the
    batch stored): the mean by einsum's own loop along the row, the second moment by one matrix product of at
    least two rows (BLAS gives each row of a product the same sum in any such product; a single row would go
    to another kernel), then einsum along the row."""

    def __init__(self, vectors: np.ndarray, mean_vector: np.ndarray, second_moment: np.ndarray):
        self.vectors, self.mean_vector, self.second_moment = vectors, mean_vector, second_moment
        n = len(vectors)
        self._mean = np.zeros(n, np.float32)
        self._std = np.zeros(n, np.float32)
        self._known = np.zeros(n, bool)

    def of(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """(mean, deviation) of each of `rows` (any order, repeats allowed)."""
        rows = np.asarray(rows, dtype=np.int64)
        new = np.unique(rows[~self._known[rows]])
        for start in range(0, len(new), STANDING_BLOCK):
            block = new[start:start + STANDING_BLOCK]
            self._mean[block], self._std[block] = self._compute(block)
            self._known[block] = True
        return self._mean[rows], self._std[rows]

    def every(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, deviation) of every row."""
        return self.of(np.arange(len(self.vectors)))

    def _compute(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(self.vectors[rows if len(rows) > 1 else np.repeat(rows, 2)], dtype=np.float32)
        mean = np.einsum("nd,d->n", x, self.mean_vector)
        second = np.einsum("nd,nd->n", x @ self.second_moment, x)
        std = np.sqrt(np.maximum(second - mean ** 2, 1e-12))
        return mean[:len(rows)], std[:len(rows)]


STANDING_BLOCK = 65_536  # rows made at a time (a float32 block of 100 MB at 384 dimensions)


def dense_moments(vectors: np.ndarray, block: int = GRAM_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """The embedding's corpus mean vector and second moment VᵀV/n (float32), what the dense z-score needs; VᵀV
    summed over blocks of rows (common.blocks.gram64); rows decoded when read (store.ann.DecodedRows) are decoded
    whole here."""
    vectors = np.asarray(vectors)
    n = len(vectors)
    mean = vectors.mean(axis=0) if n else np.zeros(vectors.shape[1], np.float32)
    return mean, (gram64(vectors, block) / max(1, n)).astype(np.float32)


def dense_moments_of(rows, n: int, dimension: int, block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """dense_moments of n vectors given as a function (start, stop) -> those rows (float32), read `block` rows at
    a time (an approximate index's vectors decoded a block at a time: at 1M articles they are 1.5 GB): the same
    numbers, the mean's float32 sum added row after row as NumPy's mean adds them, divided as it divides."""
    block = block or GRAM_BLOCK
    total, gram = np.zeros(dimension, np.float32), np.zeros((dimension, dimension), np.float64)
    for start in range(0, n, block):
        part = np.ascontiguousarray(rows(start, min(n, start + block)), dtype=np.float32)
        total = np.add.reduce(part if start == 0 else np.concatenate([total[None], part]), axis=0)
        product = part.T.astype(np.float64) @ part.astype(np.float64)
        gram = product if start == 0 else gram + product
    if n:
        np.true_divide(total, np.intp(n), out=total, casting="unsafe")
    return total, (gram / max(1, n)).astype(np.float32)
