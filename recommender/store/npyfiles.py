"""Named arrays written as plain .npy files in an index folder (never pickle), each returned as the manifest
entry that names and checksums it, so a reader can memory-map them and the manifest refuses a changed one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.atomic import atomic_path
from .manifest import file_entry


def write_npy_files(folder: Path, stem: str, role_prefix: str, arrays: dict[str, np.ndarray]) -> dict:
    """Write each array as `{stem}-{name}.npy` (temp file + rename); returns {role_prefix + name: FileEntry}."""
    entries = {}
    for name, array in arrays.items():
        path = Path(folder) / f"{stem}-{name}.npy"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        entries[role_prefix + name] = file_entry(path)
    return entries
