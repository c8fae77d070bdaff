"""The interface between a ranking and the nightly batch (recommender.batch.incremental): the corpus statistics a
ranking normalises with, and what it found of each query's candidate pools.

The batch keeps the statistics of its last full rebuild, so that the score of a pair depends on the two articles
alone, and records each list's pool boundaries to tell the next night which lists a change can reach. The ranking
reads the first through `CorpusStats` (which the batch's `Frozen` implements) and returns the second with each
query's candidates (`Candidates.pools`, a `PoolBounds`); it never writes into the batch's objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


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
    # candidates.WindowStage.retrieve); None: the window pool is the top of a full row, or no window part
    window_record: tuple | None = None
    tops: tuple | None = None  # (candidates, their raw values, {"dense": pool rows, "lexical": pool rows})
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # part -> (mean, deviation) it used
