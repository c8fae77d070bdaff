"""GET /related: stored answers at file-server speed, computed ones off the event loop, both with cache headers.

When the batch's stored lists answer (recommender.rank.storedlists: this index version, this policy, the overrides
applied on top), the answer is made once per index version and state of the overrides and kept as the bytes sent
(at most KEPT_BYTES per version); the next request for the same URL gets those bytes from `FastAnswers`, an ASGI
layer in front of the routes, without ranking, routing or JSON encoding. Any other answer (no stored list,
`explain=true`, an article whose overrides changed since the batch) is ranked on the ranking pool
(serve/offload.py). Either way the JSON is what `related --json` gives for that path (a stored answer has no per-
signal `parts`), the header `X-Recommender-Answer` says which path answered ("stored-list" or "computed"), and
`ETag` / `Cache-Control` / `Vary` come from serve/caching.py; If-None-Match with the current ETag gets 304.

A pin or block (by the editors' page, the CLI, or another worker process) changes the overrides store, whose
change counter is read on every request (4 bytes): the next request drops the kept answers. New stored lists
(a batch) and a new index version are noticed within 50 ms (caching.LOOK_EVERY)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..rank.results import UnknownArticle
from ..rank.overrides import FILE as OVERRIDES_FILE, OverrideSet, load_overrides
from ..rank.policy import Policy
from ..rank.storedlists import HEADER, StoredLists
from .caching import (LOOK_EVERY, FileWatch, SqliteWatch, cache_headers, make_etag, matches, overrides_version,
                      policy_token)
from .headers import HEADERS as SECURITY_HEADERS
from .offload import run_ranking
from .protocol import ApiError, article_ref, id_with_query, parse_flag, parse_k
from .versions import Served

KEPT_BYTES = 64 << 20  # kept answers per index version (MDN's 14,592 answers of 10 links: about 60 MB); when
# full, the older half is dropped
ANSWER_HEADER = b"x-recommender-answer"
ANSWER_PATH = b"/related"  # GET /related/{id} and GET /related?url=


@dataclass
class VersionAnswers:
    """One index version's answers under one state of the overrides and the stored lists."""

    state: tuple | None = None
    overrides: OverrideSet = field(default_factory=OverrideSet)
    overrides_version: str = "0"
    lists: StoredLists | None = None
    lists_token: str = ""
    generation: int = 0
    kept: dict = field(default_factory=dict)  # (path, query string) -> make_entry(...)
    kept_bytes: int = 0

    def keep(self, key, generation: int, entry) -> None:
        if generation != self.generation or key in self.kept:
            return  # the overrides or the lists changed while it was made
        if self.kept_bytes + len(entry[3]) > KEPT_BYTES:
            for old in list(self.kept)[:len(self.kept) // 2 + 1]:
                self.kept_bytes -= len(self.kept.pop(old)[3])
        self.kept[key] = entry
        self.kept_bytes += len(entry[3])


class Answering:
    """The app's side of it: the policy's cache headers, and the watches on the overrides and the stored lists."""

    def __init__(self, folder: Path, policy: Policy | None):
        self.folder = Path(folder)
        self.policy = policy or Policy()
        self.cache_headers = cache_headers(self.policy)
        self.policy_token = policy_token(policy)
        self.overrides_watch = SqliteWatch(self.folder / OVERRIDES_FILE)
        self.lists_watch = FileWatch(self.folder / HEADER)
        self.lists_state = self.lists_watch.state()
        self.next_look = 0.0

    def prepare(self, served: Served, old: Served) -> None:
        """Warm a new version before it is swapped in (on the opening thread): the ranker that computed answers
        need when the stored lists do not answer, and the stored answers the old version kept, made again for
        the new one (so the swap does not send every page's next request through the slow path at once)."""
        before = old.extra.get("answers")
        lists = StoredLists.open(served.index.data, self.policy) if before is None or before.lists is not None else None
        if lists is None:
            warm(served, self.policy)
        if before is None or before.state is None:
            return
        answers = VersionAnswers(state=before.state, overrides=before.overrides,
                                 overrides_version=before.overrides_version, lists=lists,
                                 lists_token=lists_token(lists))
        if lists is not None:
            for _ in range(3):  # the event loop may add to the old version's answers meanwhile
                try:
                    keys = list(before.kept)
                    break
                except RuntimeError:
                    keys = []
            for path, query_string in keys:
                entry = self.remade(served, answers, path, query_string)
                if entry is not None:
                    answers.keep((path, query_string), answers.generation, entry)
                time.sleep(0)  # the event loop gets the interpreter lock between answers, not after 1 ms
        served.extra["answers"] = answers

    def remade(self, served: Served, answers: "VersionAnswers", path: str, query_string: bytes):
        """The stored answer to a request the old version answered from its lists (None: not stored now)."""
        from urllib.parse import parse_qs

        query = query_string.decode("latin-1")
        q = {key: values[-1] for key, values in parse_qs(query).items()}
        ref = id_with_query(path[len("/related/"):], query) if path.startswith("/related/") else q.get("url", "")
        try:
            info = served.index.data.get(ref)
            return stored_entry(self, answers, served, info, parse_k(q.get("k")),
                                not parse_flag(q.get("no_overrides"), "no_overrides"))
        except (UnknownArticle, ApiError):
            return None

    def headers(self, etag: bytes, how: bytes) -> list:
        return [(b"etag", etag), *self.cache_headers, (ANSWER_HEADER, how)]

    def of(self, served: Served) -> VersionAnswers:
        """The version's answers, brought up to the state of the overrides and the stored lists now."""
        answers = served.extra.get("answers")
        if answers is None:
            answers = served.extra["answers"] = VersionAnswers()
        now = time.monotonic()
        look = now >= self.next_look
        if look:
            self.next_look = now + LOOK_EVERY
            self.lists_state = self.lists_watch.state()
        state = (self.overrides_watch.state(look), self.lists_state)
        if state != answers.state:
            before = answers.state or (object(), object())
            if state[0] != before[0]:
                answers.overrides = load_overrides(self.folder)
                answers.overrides_version = overrides_version(answers.overrides.items)
            if state[1] != before[1]:
                answers.lists = StoredLists.open(served.index.data, self.policy) if state[1] else None
                answers.lists_token = lists_token(answers.lists)
            answers.state = state
            answers.generation += 1
            answers.kept, answers.kept_bytes = {}, 0
        return answers


def lists_token(lists: StoredLists | None) -> str:
    return "s" + str(lists.header.get("sha256", ""))[:8] if lists is not None else ""


def warm(served: Served, policy: Policy) -> None:
    """Build the version's ranker once (not by two threads at a time)."""
    if served.extra.get("warm"):
        return
    with served.lock:
        if not served.extra.get("warm"):
            served.index.ranker(policy)
            served.extra["warm"] = True


class FastAnswers:
    """ASGI layer: a GET /related answer kept for this URL, version and state is sent as it is (or a 304)."""

    def __init__(self, app):
        self.app = app
        self.follower = self.answering = None  # the app's, at the first request (Starlette sets scope["app"])

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith("/related"):
            if self.answering is None:
                self.follower, self.answering = scope["app"].state.follower, scope["app"].state.answering
            entry = self.answering.of(self.follower.refresh()).kept.get((scope["path"], scope["query_string"]))
            if entry is not None:
                if_none_match = None
                for name, value in scope["headers"]:
                    if name == b"if-none-match":
                        if_none_match = value
                await send_entry(send, entry, if_none_match)
                return
        await self.app(scope, receive, send)


def make_entry(etag: bytes, headers: list, body: bytes) -> tuple:
    """What is sent for an answer: (etag, headers of a 304, headers of a 200, body), and the header lines of the
    304 and of the 200 as the fast path writes them (serve/fastpath.py: with the security headers that
    serve/headers.py adds to every other response)."""
    full = headers + [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return etag, headers, full, body, header_lines(headers), header_lines(full)


def header_lines(headers: list) -> bytes:
    present = {name for name, _ in headers}
    every = headers + [(name, value) for name, value in SECURITY_HEADERS.items() if name not in present]
    return b"".join(name + b": " + value + b"\r\n" for name, value in every)


async def send_entry(send, entry, if_none_match: bytes | None) -> None:
    etag, not_modified, full, body = entry[:4]
    if if_none_match is not None and matches(if_none_match, etag):
        await send({"type": "http.response.start", "status": 304, "headers": not_modified})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": full})
    await send({"type": "http.response.body", "body": body})


async def related_by_id(request: Request, served: Served) -> Response:
    return await answer(request, served, article_ref(request))


async def related_by_url(request: Request, served: Served) -> Response:
    url = request.query_params.get("url")
    if not url:
        raise ApiError(422, "give ?url= (or use /related/{id})")
    return await answer(request, served, url)


async def answer(request: Request, served: Served, ref: str) -> Response:
    answering: Answering = request.app.state.answering
    answers = answering.of(served)
    generation = answers.generation
    info = served.index.data.store.by_id(ref) or await run_ranking(article, served, ref)  # URL variants: off loop
    q = request.query_params
    k = parse_k(q.get("k"))
    explain = parse_flag(q.get("explain"), "explain")
    use_overrides = not parse_flag(q.get("no_overrides"), "no_overrides")
    if_none_match = request.headers.get("if-none-match", "").encode()
    entry = None if explain else stored_entry(answering, answers, served, info, k, use_overrides)
    if entry is not None:
        answers.keep((request.scope["path"], request.scope["query_string"]), generation, entry)
        return EntryResponse(entry, if_none_match)
    etag = make_etag(served.version, answers.overrides_version, answering.policy_token, "c")
    related = None  # not ranked for a 304
    if not matches(if_none_match, etag):
        policy = answering.policy.with_links(k=k) if k is not None else answering.policy
        related = await run_ranking(compute, served, info.id, policy, explain, use_overrides)
    body = b"" if related is None else payload(served, info, related)
    return EntryResponse(make_entry(etag, answering.headers(etag, b"computed"), body), if_none_match)


def stored_entry(answering: Answering, answers: VersionAnswers, served: Served, info, k: int | None,
                 use_overrides: bool):
    """The answer made from the stored lists (see make_entry), or None when they do not stand for it."""
    if answers.lists is None:
        return None
    k = k if k is not None else answering.policy.links.k
    items = answers.lists.links(served.index.data, info.row, k, answers.overrides if use_overrides else OverrideSet())
    if items is None:
        return None
    etag = make_etag(served.version, answers.overrides_version, answering.policy_token, answers.lists_token)
    body = payload(served, info, served.index.related_items(items))
    return make_entry(etag, answering.headers(etag, b"stored-list"), body)


def payload(served: Served, info, related) -> bytes:
    """The JSON bytes of an answer, exactly as a JSONResponse of it (what the service always sent)."""
    return JSONResponse({"version": served.version, "query": {"id": info.id, "title": info.title, "url": info.url},
                         "related": [link_fields(r) for r in related]}).body


def link_fields(link) -> dict:
    """Related.to_dict() for encoding at once: the fields as they are, without dataclasses.asdict's deep copy of
    each (60% of the time to make a version's kept answers again, on the thread that opens it beside the event
    loop); `parts` and `explanation` only when present, as there."""
    return {key: value for key, value in vars(link).items() if value is not None or key not in OPTIONAL}


OPTIONAL = ("parts", "explanation")


def article(served: Served, ref: str):
    try:
        return served.index.data.get(ref)
    except UnknownArticle as exc:
        raise ApiError(404, str(exc.args[0] if exc.args else exc)) from None


def compute(served: Served, article_id: str, policy: Policy, explain: bool, overrides: bool):
    """Ranked on a thread of the ranking pool, on the version the request leased."""
    warm(served, policy)
    return served.index.related(article_id, explain=explain, overrides=overrides, policy=policy)


class EntryResponse(Response):
    """A kept or just-made answer as a Starlette response (200 with the body, or 304)."""

    def __init__(self, entry, if_none_match: bytes):
        self.entry, self.if_none_match = entry, if_none_match
        super().__init__(entry[3], status_code=304 if matches(if_none_match, entry[0]) else 200)

    async def __call__(self, scope, receive, send):
        await send_entry(send, self.entry, self.if_none_match)
