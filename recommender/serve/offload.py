"""Heavy work of `recommender serve` runs off the event loop, so that no request waits for another's: ranking a
computed answer and /search (which may load the model) on a pool of one thread per core, the editors' /check
(which ranks every curated article) on a thread of its own, and opening a new index version on another. The
event loop keeps answering stored answers, /health and the rest meanwhile.

Threads, not processes: a request's work reads the index version it leased (serve/versions.py) in place, and
NumPy, FAISS, SQLite and the model release the GIL for their heavy parts. More cores: `serve --workers N`."""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor

_pools: dict[str, ThreadPoolExecutor] = {}
SIZES = {"rank": os.cpu_count() or 2, "check": 1, "open": 1}
SWITCH_INTERVAL = 0.001  # seconds a thread may hold the interpreter lock while another waits (Python's default:
# 0.005); shorter, the event loop gets it back sooner from a check or ranking thread (p99 of the cheap answers)


def tune_interpreter() -> None:
    """For a server process (`recommender serve`, each worker), not for an app embedded elsewhere."""
    import sys

    sys.setswitchinterval(SWITCH_INTERVAL)


def pool(name: str) -> ThreadPoolExecutor:
    """The named pool of this process, made on first use (a worker process makes its own)."""
    if name not in _pools:
        _pools[name] = ThreadPoolExecutor(max_workers=SIZES[name], thread_name_prefix=f"recommender-{name}")
    return _pools[name]


async def run_in(name: str, fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(pool(name), functools.partial(fn, *args, **kwargs))


async def run_ranking(fn, *args, **kwargs):
    """Ranking and model work (computed answers, /search)."""
    return await run_in("rank", fn, *args, **kwargs)


async def run_check(fn, *args, **kwargs):
    """The editors' check: one at a time, beside the ranking pool."""
    return await run_in("check", fn, *args, **kwargs)


async def run_open(fn, *args, **kwargs):
    """Opening (and warming) a new index version."""
    return await run_in("open", fn, *args, **kwargs)
