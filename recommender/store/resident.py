"""Mapped arrays held in memory by a process that ranks many lists (the nightly batch's link job), up to a budget.

A query by id maps the index's arrays: it reads a few pages of each and nothing more. A links phase reads, for
every list, some 4,000 stored windows' codes, a few hundred TF-IDF rows and some 65,000 postings (at 1M articles),
each at random in arrays of 0.45-1.6 GB. In a mapped file every new page touched costs an address translation
from 4 KB pages (a TLB miss, then a page-table walk that itself misses the caches); held in memory, NumPy asks the
kernel for transparent huge pages (2 MB) for every array above 4 MB, and the same reads cost less. At 1M articles
the window pairs' loop alone went from 1.03 to 0.81 ms a list (0.78 to 0.56 with its prefetch), and the held arrays,
the prefetch and the compiled TF-IDF cosines together took 10-14% off a list's CPU (docs/scale.md, "Hot arrays held
in memory").

`held` copies only arrays that are mapped from a file, only while the process's budget lasts (by default the
memory available when the job starts, divided by twice the machine's cores: every worker may hold its own; a copy
let go gives its bytes back). The numbers are the same either way: only where they lie
changes.

    hold_in_memory()            # this process ranks many lists: hold from now on
    codes = held(codes)         # a copy in memory while the budget lasts, else the array as it is
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
import weakref

import numpy as np

log = logging.getLogger(__name__)

_BUDGET_LOCK = threading.Lock()
_STATE = {"left": 0}  # bytes this process may still hold


def default_budget() -> int:
    """The memory available now, divided by twice the cores (each worker process may hold its own copies)."""
    available = 0
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if not available:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 0
    return available // (2 * (os.cpu_count() or 1))


def hold_in_memory(budget: int | None = None) -> int:
    """From now on `held` copies mapped arrays into memory, up to `budget` bytes in all for this process (None:
    default_budget(), taken once: a later call does not add to it). Returns the bytes that may still be held."""
    with _BUDGET_LOCK:
        if budget is not None:
            _STATE["left"] = max(0, int(budget))
        elif "asked" not in _STATE:
            _STATE["left"] = default_budget()
        _STATE["asked"] = True
        return _STATE["left"]


def stop_holding() -> None:
    """`held` gives arrays as they are from now on (copies already made stay with whoever holds them, and their
    bytes do not go back to a later budget)."""
    with _BUDGET_LOCK:
        generation = _STATE.get("generation", 0) + 1
        _STATE.clear()
        _STATE.update(left=0, generation=generation)


def is_mapped(array) -> bool:
    """Whether the array's memory is a mapped file (np.load(mmap_mode=...), np.memmap, or a view of one)."""
    base = array
    while base is not None:
        if isinstance(base, (mmap.mmap, np.memmap)):
            return True
        base = getattr(base, "base", None)
    return False


def held(array):
    """A copy of `array` in memory when it is mapped from a file and fits what is left of the budget, else `array`
    itself. The copy's bytes go back to the budget when it is let go."""
    if not isinstance(array, np.ndarray) or not array.size or not is_mapped(array):
        return array
    size = int(array.nbytes)
    with _BUDGET_LOCK:
        if size > _STATE["left"]:
            if _STATE.get("asked") and not _STATE.get("told"):
                _STATE["told"] = True
                log.info("%.2f GB of mapped arrays stay mapped: over what this process may hold in memory", size / 1e9)
            return array
        _STATE["left"] -= size
        generation = _STATE.get("generation", 0)
    copy = np.array(array, order="C")  # NumPy: transparent huge pages above 4 MB where the kernel offers them
    copy.flags.writeable = False
    weakref.finalize(copy, _give_back, size, generation)
    return copy


def _give_back(size: int, generation: int) -> None:
    """A copy's bytes back to the budget it was taken from (not to one set after a stop_holding)."""
    with _BUDGET_LOCK:
        if _STATE.get("asked") and _STATE.get("generation", 0) == generation:
            _STATE["left"] += size
