"""The index version a server answers from, and the follower that switches to a newly committed version between
requests: opened and verified in full before one reference is swapped; a version that fails its checks is not
served, the old one stays, and the follower keeps the reason for /health.

A new version is opened on a thread of its own (serve/offload.py) while the old one keeps answering, so no
request waits for it. A request leases the version it started with (`acquire` / `release`) and keeps it to the
end, even when its work runs on another thread; a version swapped out is closed when its last lease ends."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..rank.index import Index
from ..store.manifest import MANIFEST_NAME, IndexProblem
from .caching import LOOK_EVERY, file_identity

log = logging.getLogger("recommender")


@dataclass(eq=False)
class Served:
    index: Index
    version: str  # sha256 prefix of the manifest that was opened
    stat: tuple
    users: int = 0  # requests that hold this version now
    retired: bool = False  # swapped out: closed once no request holds it
    lock: threading.Lock = field(default_factory=threading.Lock)  # for work that builds a shared part once
    extra: dict = field(default_factory=dict)  # what the app prepares per version (serve/answers.py)




def open_version(folder: Path) -> Served:
    """Open and verify the committed version of an index folder (raises IndexProblem)."""
    stat = file_identity(str(folder / MANIFEST_NAME))
    index = Index.open(folder)
    version = hashlib.sha256(index.data.manifest.to_json().encode()).hexdigest()[:12]
    return Served(index, version, stat)


class Follower:
    """Holds the served index version and switches to a newly committed one between requests.

    prepare(new, old), when given, runs on the opening thread before a new version is swapped in (warm-up)."""

    def __init__(self, folder: str | Path, prepare: Callable[[Served, Served], None] | None = None):
        self.folder = Path(folder)
        self.manifest = str(self.folder / MANIFEST_NAME)
        self.prepare = prepare
        self.current: Served = open_version(self.folder)  # a broken index fails at start, not at a request
        self.problem: str | None = None  # why the last new version was refused
        self.refused_stat: tuple | None = None
        self.swaps = 0
        self.opening: asyncio.Future | None = None  # the new version being opened, if any
        self.next_look = 0.0

    def refresh(self, look: bool = False) -> Served:
        """The version to answer from now; starts opening a newly committed one in the background (outside an
        event loop: opens it here). The manifest is looked at every LOOK_EVERY seconds, or now with look=True."""
        now = time.monotonic()
        if not look and now < self.next_look:
            return self.current
        self.next_look = now + LOOK_EVERY
        stat = file_identity(self.manifest)
        if stat is None or stat == self.current.stat or stat == self.refused_stat or self.opening is not None:
            return self.current
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._swap(stat, *self._open(stat))
            return self.current
        from .offload import run_open

        self.opening = asyncio.ensure_future(run_open(self._open, stat))
        self.opening.add_done_callback(lambda done: self._opened(stat, done))
        return self.current

    async def settled(self) -> Served:
        """The version to answer from once any version being opened now is in (or refused)."""
        self.refresh(look=True)
        if self.opening is not None:
            await asyncio.shield(self.opening)
            await asyncio.sleep(0)  # the done callback has run
        return self.current

    def acquire(self) -> Served:
        served = self.refresh()
        served.users += 1
        return served

    def release(self, served: Served) -> None:
        served.users -= 1
        if served.retired and served.users == 0:
            served.index.close()

    def _open(self, stat) -> tuple[Served | None, str | None]:
        try:
            fresh = open_version(self.folder)
        except IndexProblem as exc:
            return None, str(exc)
        if self.prepare is not None:
            try:
                self.prepare(fresh, self.current)
            except Exception as exc:  # noqa: BLE001 - a warm-up that failed: the version answers all the same
                log.warning("index version %s: warming it up failed (%s); serving it cold", fresh.version, exc)
        return fresh, None

    def _opened(self, stat, done: asyncio.Future) -> None:
        self.opening = None
        if done.cancelled():
            return
        if done.exception() is not None:
            self._swap(stat, None, f"{type(done.exception()).__name__}: {done.exception()}")
        else:
            self._swap(stat, *done.result())

    def _swap(self, stat, fresh: Served | None, problem: str | None) -> None:
        if fresh is None:
            self.problem, self.refused_stat = problem, stat
            log.warning("new index version refused, still serving %s: %s", self.current.version, problem)
            return
        old, self.current = self.current, fresh  # the swap: one reference
        self.problem, self.refused_stat = None, None
        self.swaps += 1
        old.retired = True
        if old.users == 0:
            old.index.close()
        log.info("now serving index version %s (was %s)", fresh.version, old.version)

    def close(self) -> None:
        self.current.index.close()
