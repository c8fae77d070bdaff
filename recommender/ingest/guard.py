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
it only applies in the main thread of a process (the batch, `index`); elsewhere, and when SIGALRM has another
handler, the block runs without one (every pattern the readers use is linear in its input, so the
budget is a backstop, not the bound).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
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


class _Watchdog:
    """One daemon thread that sends SIGALRM to the main thread alone (pthread_kill) when the armed deadline passes.
    A process-wide timer (setitimer) would let the kernel deliver the signal to any thread, including the native
    thread pools of torch or OpenVINO, which do not expect interrupted system calls."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.deadline: float | None = None
        self.armed = False  # read by the handler: a late signal after disarm() is ignored
        self.thread: threading.Thread | None = None

    def arm(self, seconds: float) -> None:
        with self.cond:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="read-budget", daemon=True)
                self.thread.start()
            self.deadline, self.armed = time.monotonic() + seconds, True
            self.cond.notify()

    def disarm(self) -> None:
        with self.cond:
            self.deadline, self.armed = None, False

    def _run(self) -> None:
        with self.cond:
            while True:
                if self.deadline is None:
                    self.cond.wait()
                    continue
                remaining = self.deadline - time.monotonic()
                if remaining > 0:
                    self.cond.wait(remaining)
                    continue
                self.deadline = None
                signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)


_WATCHDOG = _Watchdog()


def _expired(signum, frame):
    if _WATCHDOG.armed:
        _WATCHDOG.armed = False
        raise ReadTimeout("reading took longer than the time budget of one input; skipped")


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Raise ReadTimeout in the block once `seconds` have passed (main thread only; see the module docstring)."""
    usable = (seconds is not None and hasattr(signal, "pthread_kill")
              and threading.current_thread() is threading.main_thread() and not _WATCHDOG.armed
              and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, _expired))
    if not usable:
        yield
        return
    signal.signal(signal.SIGALRM, _expired)  # kept installed: a signal that arrives late finds it and is ignored
    _WATCHDOG.arm(seconds)
    try:
        yield
    except ReadTimeout as exc:
        raise ReadTimeout(f"reading took longer than the {seconds:g} s budget of one input; skipped") from exc
    finally:
        _WATCHDOG.disarm()
