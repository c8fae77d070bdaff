"""The stored answers' fast path in uvicorn's own HTTP protocol: a whole `GET /related...` request whose answer is
kept (serve/answers.py) is answered from the bytes read off the socket, before uvicorn parses it, makes an ASGI
scope and a task, and runs the app's middleware; every other request (and anything this path is not sure of)
goes to uvicorn unchanged.

Why: a kept answer cost the service 44-50 us of CPU through uvicorn, the ASGI call and Starlette, where nginx
hands out the same JSON file for 8-9 us (docs/serve.md, "Load figures"). Answered here, the same bytes cost a
fraction of that, and the rest of the server stays uvicorn's (workers, keep-alive, flow control, shutdown,
errors, logging).

What is answered here, and what the answer is, is exactly what FastAnswers (the ASGI layer) would have sent: the
same lookup (`Answering.of(Follower.refresh())`, so the overrides' change counter is read on every request: a pin
is live on the next request, and a swapped version answers from the request after the swap), the same entry
(ETag, Cache-Control, Vary, X-Recommender-Answer, the security headers, the body), a 304 on a matching
If-None-Match, uvicorn's own Date and Server headers, and CORS as serve/widget.py answers a simple GET: an
`Origin` among the policy's `[serve] cors_origins` gets `Access-Control-Allow-Origin` (the page's widget calls
come with one). A request goes to uvicorn instead when:

- it is not `GET /related...` in HTTP/1.1 origin form, or its answer is not kept (not stored, not asked yet);
- it carries a header that changes how the message is framed: Content-Length, Transfer-Encoding, Expect, Upgrade,
  or a Connection other than keep-alive; or a header line that is not well formed (WELL_FORMED);
- uvicorn is in the middle of a request on the connection (its answers must go out in order), the client is not
  reading what was sent (the transport's write buffer is full), or the request has not fully arrived;
- access logging is on (uvicorn logs what it answers).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .answers import ANSWER_PATH
from .caching import matches

GET = b"GET " + ANSWER_PATH
END = b"\r\n\r\n"
VERSION = b" HTTP/1.1"
STATUS = {200: b"HTTP/1.1 200 OK\r\n", 304: b"HTTP/1.1 304 Not Modified\r\n"}
# header lines as RFC 9112 has them (a token, a colon, a value of visible characters, spaces and tabs; CRLF): a
# bare LF or CR, a folded line or a name uvicorn's parser would refuse goes to uvicorn, which answers 400, so the
# fast path never frames a message otherwise than uvicorn would (a request smuggled in a body it did not see)
WELL_FORMED = re.compile(rb"(?:\r\n[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*")
# headers that send a request to uvicorn (their value: group 2); If-None-Match is read here (matches)
SPECIAL = re.compile(rb"\r\n(content-length|transfer-encoding|expect|upgrade|origin|connection|if-none-match)"
                     rb"[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


# uvicorn's own protocol state the fast path reads (tested with uvicorn 0.55): a uvicorn without one of them
# answers every request itself, as it would without this class
UVICORN_STATE = ("pipeline", "cycle", "flow", "server_state", "timeout_keep_alive_task", "timeout_keep_alive", "loop")


class StoredAnswersProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (`uvicorn.run(..., http=StoredAnswersProtocol)`) with the fast path."""

    _defaults: tuple = (None, b"")  # uvicorn's default headers (Date, Server) and their bytes

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.in_message = False  # uvicorn's parser holds part of a request
        self.fast_answers = 0  # answered here since the keep-alive timer was armed
        app = self.app  # the service's Starlette app, under uvicorn's own wrappers (proxy headers, logging)
        while app is not None and not hasattr(getattr(app, "state", None), "answering"):
            app = getattr(app, "app", None)
        self.fast = (app is not None and not (self.access_log and self.access_logger.isEnabledFor(logging.INFO))
                     and all(hasattr(self, name) for name in UVICORN_STATE))
        if self.fast:
            self.answering, self.follower = app.state.answering, app.state.follower
            self.origins = {origin.encode() for origin in self.answering.policy.serve.cors_origins}

    def on_message_begin(self) -> None:
        self.in_message = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self.in_message = False
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self.fast and not self.in_message and not self.pipeline and (
                self.cycle is None or self.cycle.response_complete):
            done = self.answer(data)
            if done:
                self.fast_answers += 1
                if self.timeout_keep_alive_task is None:  # a connection that only ever got answers here
                    self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                        self.timeout_keep_alive_handler)
                if done == len(data):
                    return
                data = data[done:]
        super().data_received(data)

    def answer(self, data: bytes) -> int:
        """Answer the whole requests at the start of `data` that can be answered here; how many bytes they took."""
        at = 0
        while True:
            end = data.find(END, at)
            if end < 0 or not data.startswith(GET, at) or self.flow.write_paused:
                return at
            line_end = data.find(b"\r\n", at)
            if not data.endswith(VERSION, at, line_end):
                return at
            target = data[at + 4:line_end - len(VERSION)]
            if b" " in target or not WELL_FORMED.fullmatch(data, line_end, end):
                return at
            if_none_match = origin = None
            for name, value in SPECIAL.findall(data, line_end, end + 2):
                name = name.lower()
                if name == b"if-none-match":
                    if_none_match = value.rstrip(b" \t")
                elif name == b"origin":
                    origin = value.rstrip(b" \t")
                elif name != b"connection" or value.strip().lower() != b"keep-alive":
                    return at
            path, _, query = target.partition(b"?")
            try:
                path = path.decode("ascii")
            except UnicodeDecodeError:
                return at
            if "%" in path:
                path = unquote(path)
            try:
                entry = self.answering.of(self.follower.refresh()).kept.get((path, query))
            except Exception:  # noqa: BLE001 - e.g. an unreadable overrides store: the app answers it (a 500)
                return at
            if entry is None:
                return at
            cors = b"access-control-allow-origin: " + origin + b"\r\n" if origin in self.origins else b""
            self.transport.write(self.response(entry, if_none_match, cors))
            self.server_state.total_requests += 1
            at = end + 4

    def response(self, entry, if_none_match: bytes | None, cors: bytes) -> bytes:
        defaults = self.server_state.default_headers
        if defaults is not StoredAnswersProtocol._defaults[0]:  # uvicorn makes a new list when the Date changes
            StoredAnswersProtocol._defaults = (defaults, b"".join(name + b": " + value + b"\r\n"
                                                                  for name, value in defaults))
        if if_none_match is not None and matches(if_none_match, entry[0]):
            return b"".join((STATUS[304], StoredAnswersProtocol._defaults[1], entry[4], cors, b"\r\n"))
        return b"".join((STATUS[200], StoredAnswersProtocol._defaults[1], entry[5], cors, b"\r\n", entry[3]))

    def timeout_keep_alive_handler(self) -> None:
        """The keep-alive timer (armed after a response): a connection still asking (here) is kept open."""
        if self.fast_answers:
            self.fast_answers = 0
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                self.timeout_keep_alive_handler)
            return
        super().timeout_keep_alive_handler()
