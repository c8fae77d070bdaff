"""The time budget of reading one input (a file, a JSONL line): `time_budget` sets a deadline for the block and
the reading steps call `check_time` between them (each YAML node, each clean-up pass, each line ftfy sees, each
feed item), which raises ReadTimeout once it has passed. Cooperative, not a timer signal: a signal could land in
the native code of another library (the model's thread pools) that does not expect an interrupted system call.
Its own module so that the text clean-up can check it without importing the readers."""

from __future__ import annotations

import contextlib
import contextvars
from time import monotonic
from typing import Iterator


class ReadTimeout(ValueError):
    """Reading one input took longer than its time budget."""


_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("read_deadline", default=None)


def check_time() -> None:
    """Raise ReadTimeout when the input being read is past its time budget. The readers and the text clean-up call
    it between their steps (each YAML node, each clean-up pass, each XML item), so a read stops at the next step
    after its budget; outside `per_input` it does nothing."""
    budget = _DEADLINE.get()
    if budget is not None and monotonic() > budget[0]:
        raise ReadTimeout(f"reading took longer than the {budget[1]:g} s budget of one input; skipped")


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """The block's reads stop (ReadTimeout, at their next `check_time`) once `seconds` have passed; in any thread;
    a nested budget ends at the earlier deadline."""
    if seconds is None:
        yield
        return
    deadline = monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(outer if outer is not None and outer[0] <= deadline else (deadline, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)
