"""A digest of this package's source code: what was computed by other code (stored lists, a night's outputs,
the incremental state) is recomputed after an upgrade rather than trusted."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


SERVING_ONLY = ("serve",)  # the HTTP service reads lists and never decides one: its code is left out


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of every source file of the package (by path inside it, and content), its JSON data too (the
    shipped transferable default ranking, recommender/rank/default_model.json), but the service's."""
    digest = hashlib.sha256()
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.json")]):
        if path.relative_to(PACKAGE).parts[0] in SERVING_ONLY:
            continue
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
