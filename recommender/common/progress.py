"""Progress bars and log set-up: both go to stderr, and `--quiet` silences both."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator


@contextlib.contextmanager
def progress_bar(total: int, desc: str, unit: str = "it", enabled: bool = True) -> Iterator:
    """A tqdm bar on stderr, or a do-nothing stand-in when disabled or when there is nothing to do."""
    if not enabled or total <= 0:
        yield _NoBar()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, mininterval=0.5) as bar:
        yield bar


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Log lines to stderr: warnings only with --quiet, debug with --verbose, info otherwise."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    root = logging.getLogger("recommender")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
