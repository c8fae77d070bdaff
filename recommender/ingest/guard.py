"""One input at a time: the failures of reading one file (or one JSONL line) become a `Problem`, and the read
goes on with the next input. Every reader uses it, so a hostile or broken input never stops a batch.

    problems: list[Problem] = []
    for lineno, line in lines:
        with per_input(rel, problems, line=lineno):
            articles.append(parse_line(line))  # raise IngestError("why") for input that cannot be used

`per_input` catches what bad input can raise while being parsed: `IngestError` (the reader's own refusals), any
other `ValueError` (a date such as 2023-13-45, a number that is not one, text that is not UTF-8),
`OverflowError`, `RecursionError` (nesting past Python's limit), `OSError` (the file cannot be read) and
`yaml.YAMLError`; anything else is a bug and is raised. It also gives the block a time budget (`READ_SECONDS`):
past it the block is interrupted and the input reported as too slow to read. The budget is a SIGALRM timer, so
it only applies in the main thread of a process (the batch, `index`); elsewhere, and when another timer is
already running, the block runs without one (every pattern the readers use is linear in its input, so the
budget is a backstop, not the bound).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import yaml

from .article import Problem

READ_SECONDS = 30.0  # per file (per JSONL line): a 5 MB Markdown body reads in about 6 s


class IngestError(ValueError):
    """A file (or line) that cannot be turned into an article; the message says why."""


class ReadTimeout(IngestError):
    """Reading one input took longer than its time budget."""


CAUGHT = (ValueError, OverflowError, RecursionError, OSError, yaml.YAMLError)


def reason(exc: BaseException) -> str:
    """The one-line reason a Problem reports for an exception `per_input` caught."""
    if isinstance(exc, IngestError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    if isinstance(exc, yaml.YAMLError):
        return f"invalid YAML: {' '.join(str(exc).split())}"
    return f"invalid value: {exc}"


@contextlib.contextmanager
def per_input(path: str, problems: list[Problem], line: int | None = None,
              seconds: float | None = READ_SECONDS) -> Iterator[None]:
    """Run the reading of one input; if it fails, append a Problem naming path (and line) and leave the block.
    seconds: the time budget (None: none, e.g. around a whole JSONL file whose lines have their own)."""
    try:
        with time_budget(seconds):
            yield
    except CAUGHT as exc:
        problems.append(Problem(path, reason(exc), line=line))


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Raise ReadTimeout in the block once `seconds` have passed (main thread only; see the module docstring)."""
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return

    def expired(signum, frame):
        raise ReadTimeout(f"reading took longer than the {seconds:g} s budget of one input; skipped")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
