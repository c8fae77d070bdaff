"""Every article's window vectors in the index folder: `windows-TOKEN-vectors.npy` (windows x dim, float16; the
head first, then every body window) and `windows-TOKEN-offsets.npy` (n + 1 int64: article i owns rows
offsets[i]:offsets[i + 1]). Named and checksummed in the manifest (roles "windows:vectors", "windows:offsets"),
memory-mapped by a reader, never pickled. What reads them: recommender.rank.windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .manifest import IndexProblem
from .npyfiles import write_npy_files

PREFIX = "windows:"
ROLES = (PREFIX + "vectors", PREFIX + "offsets")


def write_windows(folder: Path, token: str, windows) -> dict:
    """Write one index version's windows (an embed.vectorize.Windows); returns the manifest entries."""
    return write_npy_files(folder, f"windows-{token}", PREFIX, {"vectors": windows.vectors,
                                                                 "offsets": windows.offsets})


def read_windows(folder: Path, manifest) -> tuple[np.ndarray, np.ndarray] | None:
    """(vectors, offsets), memory-mapped, or None for an index stored without windows."""
    if not all(role in manifest.files for role in ROLES):
        return None
    arrays = []
    for role in ROLES:
        path = Path(folder) / manifest.files[role].name
        try:
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise IndexProblem(f"{path}: cannot read ({exc}); rebuild the index") from None
    vectors, offsets = arrays
    if offsets.ndim != 1 or len(offsets) != manifest.count + 1 or vectors.ndim != 2 \
            or int(offsets[-1]) != len(vectors) or vectors.shape[1] != manifest.dimension:
        raise IndexProblem(f"{folder}: stored windows do not fit the index ({len(offsets) - 1} articles, "
                           f"{len(vectors)} windows); rebuild the index")
    return vectors, offsets
