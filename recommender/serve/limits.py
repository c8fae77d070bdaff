"""What one request may cost the server: the size of its body and the nesting of its JSON.

A body is refused (413) from its declared Content-Length before a byte of it is read, and a body sent without
one (chunked) is read only up to the limit; JSON nested deeper than MAX_DEPTH is refused (400) before it is
parsed, since Python's parser recurses once per level (a body of 100,000 brackets is a RecursionError)."""

from __future__ import annotations

import json
import re

MAX_BODY = 1 << 20  # bytes: a search text or an editor's write is a few KB; a whole long article fits
MAX_DEPTH = 32  # levels of [] / {}: the API's bodies nest two

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


class Refused(Exception):
    """A request the limits refuse: the HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request, limit: int = MAX_BODY) -> bytes:
    """The request's body, at most `limit` bytes: Refused(413) from the Content-Length header when it declares
    more, else as soon as the bytes received go over (reading no further)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise Refused(400, f"Content-Length must be a number of bytes, got {declared[:40]!r}")
        if int(declared) > limit:
            raise Refused(413, f"the body is {int(declared)} bytes; at most {limit} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is over {limit} bytes, the most accepted")
        chunks.append(chunk)
    return b"".join(chunks)


def nesting_depth(raw: bytes, stop: int = MAX_DEPTH) -> int:
    """How deep the brackets of a JSON text nest (strings aside), counting no further than `stop` + 1."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop:
                break
    return deepest


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH):
    """The JSON value of `raw`: Refused(400) when it nests deeper than `max_depth`, Refused(422) when it is not
    JSON."""
    if nesting_depth(raw, max_depth) > max_depth:
        raise Refused(400, f"the JSON body nests deeper than {max_depth} levels, the most accepted")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise Refused(422, "the body must be a JSON object") from None
