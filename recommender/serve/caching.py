"""HTTP caching of the /related answers: what a browser, a reverse proxy or a CDN in front may keep, and for how
long.

- `ETag`: the index version, the overrides' version (a digest of the overrides' content, so every worker process
  agrees), the policy, and how the answer was made (`s` + the stored lists' digest, or `c` computed). A new
  version, a pin, a block or a new batch's lists give every answer a new ETag; the same state gives the same
  bytes (ETags are strong).
- `If-None-Match` with the current ETag: 304, without ranking or reading the answer.
- `Cache-Control: public, max-age=N` from the policy's `[serve] max_age` (seconds; default 300): a cache in front
  serves a kept answer for at most that long, then revalidates (a 304 while nothing changed). So no list of an
  older index version, and no list without a pin made since, is served for longer than max_age after the change.
  0 gives `no-cache`: a cache revalidates every time (a pin is live at once through it).
- `Vary`: the answer depends on the URL alone (no content negotiation, reads need no token, no compression); when
  the policy lets other origins read the links (`[serve] cors_origins`, the widget), on `Origin` too.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

def cache_headers(policy) -> list[tuple[bytes, bytes]]:
    """Cache-Control (and Vary when needed) for every cacheable answer under the policy (rank.policy.Policy;
    `[serve] max_age`, whose default is 300 s: a pin or a new version reaches a page through a cache within
    five minutes)."""
    age = policy.serve.max_age
    headers = [(b"cache-control", b"no-cache" if age <= 0 else f"public, max-age={age}".encode())]
    if policy.serve.cors_origins:
        headers.append((b"vary", b"Origin"))
    return headers


def policy_token(policy) -> str:
    """A short digest of the served policy (another policy ranks other lists)."""
    data = policy.to_dict() if policy is not None else {}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]


def make_etag(version: str, overrides_version: str, policy: str, kind: str) -> bytes:
    return f'"{version}-{overrides_version}-{policy}-{kind}"'.encode()


def matches(if_none_match: bytes | None, etag: bytes) -> bool:
    """Whether an If-None-Match header names this ETag (weak comparison, as RFC 9110 asks for GET)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == b"*":
        return True
    return any(tag.strip().removeprefix(b"W/") == etag for tag in if_none_match.split(b","))


LOOK_EVERY = 0.05  # seconds between the stats that notice a file replaced by a rename (a new index version,
# a batch's new stored lists): a stat costs about as much as sending a kept answer, and a new version that
# starts answering 50 ms later is as complete as the old one


def file_identity(path: str) -> tuple | None:
    """A file replaced by a rename (the manifest, the stored lists' header): its inode, size and mtime, or None
    when it is missing. On every request: a plain string path (a pathlib join costs more than the stat)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class FileWatch:
    """A file that is replaced by a rename: its identity (file_identity) now."""

    def __init__(self, path: Path):
        self.path = str(path)

    def state(self) -> tuple | None:
        return file_identity(self.path)


class SqliteWatch:
    """The overrides store, which SQLite writes in place (a write may keep the size and fall within one mtime
    tick): its header's file change counter, bumped by every commit, read on every request (one pread, so the
    next request sees a pin), and the file's identity, looked at with a stat when `look` (or while missing)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.fd: int | None = None
        self.ino: int | None = None

    def state(self, look: bool) -> tuple | None:
        if self.fd is None and not os.access(self.path, os.F_OK):
            return None
        if look or self.fd is None:
            try:
                ino = os.stat(self.path).st_ino
                if ino != self.ino or self.fd is None:
                    self.close()
                    self.fd, self.ino = os.open(self.path, os.O_RDONLY), ino
            except FileNotFoundError:
                self.close()
                return None
        return (self.ino, os.pread(self.fd, 4, 24))  # SQLite's file change counter

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = self.ino = None


def overrides_version(items) -> str:
    """A digest of the overrides' content (every worker process computes the same)."""
    blob = json.dumps(sorted(json.dumps(o.to_dict(), sort_keys=True) for o in items))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]
