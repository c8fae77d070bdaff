"""The index version a server answers from, and the follower that switches to a newly committed version between
requests: opened and verified in full before one reference is swapped; a version that fails its checks is not
served, the old one stays, and the follower keeps the reason for /health."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ..rank.index import Index
from ..store.manifest import MANIFEST_NAME, IndexProblem

log = logging.getLogger("recommender")


@dataclass
class Served:
    index: Index
    version: str  # sha256 prefix of the manifest that was opened
    stat: tuple


def manifest_stat(folder: Path) -> tuple | None:
    try:
        st = (folder / MANIFEST_NAME).stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def open_version(folder: Path) -> Served:
    """Open and verify the committed version of an index folder (raises IndexProblem)."""
    stat = manifest_stat(folder)
    index = Index.open(folder)
    version = hashlib.sha256(index.manifest.to_json().encode()).hexdigest()[:12]
    return Served(index, version, stat)


class Follower:
    """Holds the served index version and switches to a newly committed one between requests."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.current: Served | None = None  # opened on the serving thread (SQLite connections stay on theirs)
        open_version(self.folder).index.close()  # a broken index fails at start, not at the first request
        self.problem: str | None = None  # why the last new version was refused
        self.refused_stat: tuple | None = None
        self.swaps = 0

    def refresh(self) -> Served:
        if self.current is None:
            self.current = open_version(self.folder)
        stat = manifest_stat(self.folder)
        if stat is None or stat == self.current.stat or stat == self.refused_stat:
            return self.current
        try:
            fresh = open_version(self.folder)
        except IndexProblem as exc:
            self.problem, self.refused_stat = str(exc), stat
            log.warning("new index version refused, still serving %s: %s", self.current.version, exc)
            return self.current
        old, self.current = self.current, fresh  # the swap: one reference
        self.problem, self.refused_stat = None, None
        self.swaps += 1
        old.index.close()
        log.info("now serving index version %s (was %s)", fresh.version, old.version)
        return fresh

    def close(self) -> None:
        if self.current is not None:
            self.current.index.close()
