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
the reading steps check it (`check_time`) and stop once it has passed, and the input is reported as too slow to
read (every pattern the readers use is linear in its input, so the budget is a backstop, not the bound).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import yaml

from ..common.errors import InputError
from .article import Problem
from .budget import ReadTimeout, check_time, time_budget  # noqa: F401 - importable from here

READ_SECONDS = 30.0  # per file (per JSONL line): a 5 MB Markdown body reads in about 6 s


class IngestError(InputError):
    """A file (or line) that cannot be turned into an article; the message says why."""


CAUGHT = (ValueError, OverflowError, RecursionError, OSError, yaml.YAMLError)


def reason(exc: BaseException) -> str:
    """The one-line reason a Problem reports for an exception `per_input` caught."""
    if isinstance(exc, (IngestError, ReadTimeout)):
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
