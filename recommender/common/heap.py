"""The batch's long-lived objects kept out of Python's full garbage collections.

A batch builds a few hundred thousand objects that live until it ends: the articles read, the job's records, the
lists state's records, every list's links and their output records. Python's full (oldest-generation) collection
walks every tracked object each time it runs, and a night on MDN ran ten of them, 1.4-1.9 s of its 26-28 s, most of
it walking those same objects again. Within `batch_heap()`, `keep_alive()` moves every object alive at that point
into the permanent generation (`gc.freeze`): full collections then walk only what came after. On leaving, the
objects are handed back (`gc.unfreeze`), and a long-lived caller's process collects them as before.

Objects frozen are still freed when their last reference goes (reference counting); only garbage in reference
cycles waits for the end. A process that froze objects itself (a service may freeze what it loaded at start) is
left as it is: the batch then freezes nothing, since unfreezing would hand back the caller's objects too.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

_active = False


@contextmanager
def batch_heap() -> Iterator[None]:
    """Within it, keep_alive() freezes; at its end every object frozen here is handed back (see the module)."""
    global _active
    if _active or gc.get_freeze_count():  # nested, or the caller's own frozen objects: leave them as they are
        yield
        return
    _active = True
    try:
        yield
    finally:
        _active = False
        gc.unfreeze()


def keep_alive() -> None:
    """Every object alive now is taken out of later full collections (inside batch_heap; else nothing)."""
    if _active:
        gc.freeze()
