"""The stored answers' fast path in uvicorn's protocol (serve/fastpath.py), on a real uvicorn on loopback: a kept
answer is sent without calling the app, with the same bytes and headers the app sends, a 304 on a matching ETag,
a pin live on the next request and a new version after a swap (both under a new ETag), and requests it does not
answer still go to the app, in order."""

import socket
import time

import httpx
import pytest

from recommender import Index
from recommender.batch.nightly import run_batch
from recommender.rank.overrides import Overrides
from recommender.rank.policy import load_policy
from recommender.serve.app import create_app
from recommender.serve.fastpath import StoredAnswersProtocol
from recommender.store.manifest import read_manifest, write_manifest

from conftest import FIXTURES, LEXICAL_POLICY
from livehttp import live_server


class Counting:
    """The app, counting the requests that reach it (the fast path finds the app below, by `.app`)."""

    def __init__(self, app):
        self.app, self.calls = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.calls.append(scope["path"])
        await self.app(scope, receive, send)


def batched(tmp_path, policy_text: str):
    """A batched index (stored lists) under the policy, and an article whose stored list has two links, with it."""
    (tmp_path / "policy.toml").write_text(policy_text)
    policy = load_policy(tmp_path / "policy.toml")
    folder = tmp_path / "idx"
    assert run_batch(FIXTURES / "corpus", folder, tmp_path / "out", policy, model="hashing",
                     progress=False).stored_lists == "stored"
    with Index.open(folder) as index:
        answers = {ref: index.related_answer(ref, policy=policy) for ref in index.data.store.ids()}
    article, (links, _) = next((ref, a) for ref, a in answers.items() if a[1] == "stored-list" and len(a[0]) >= 2)
    return folder, policy, article, links


@pytest.fixture
def served(tmp_path):
    """The batched index served by uvicorn with the fast path: (base URL, counting app, folder, article, links)."""
    folder, policy, article, links = batched(tmp_path, LEXICAL_POLICY)
    app = Counting(create_app(folder, policy=policy))
    with live_server(app, http=StoredAnswersProtocol) as base:
        yield base, app, folder, article, links


def without_date(headers) -> dict:
    return {name: value for name, value in headers.items() if name != "date"}


def test_a_kept_answer_is_sent_without_the_app_as_the_app_sends_it(served):
    base, app, folder, article, links = served
    path = f"/related/{article}"
    with httpx.Client(base_url=base) as http:
        first = http.get(path)  # made by the app, and kept
        assert app.calls == [path] and first.headers["x-recommender-answer"] == "stored-list"
        kept = http.get(path)
        assert app.calls == [path], "a kept answer went through the app"
        assert kept.status_code == 200 and kept.content == first.content
        assert without_date(kept.headers) == without_date(first.headers)  # ETag, caching, security headers
        assert kept.headers["date"] and kept.headers["server"] == "uvicorn"
        etag = kept.headers["etag"]
        assert http.get(path, headers={"If-None-Match": etag}).status_code == 304
        assert http.get(path, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
        assert http.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
        # a request the fast path leaves to the app (one that says it has a body) gets the same answer
        by_app = http.get(path, headers={"Content-Length": "0"})
        assert app.calls == [path, path] and by_app.content == first.content
        assert without_date(by_app.headers) == without_date(first.headers)
        not_modified = http.get(path, headers={"If-None-Match": etag})
        assert not_modified.content == b"" and without_date(not_modified.headers) == without_date(
            http.get(path, headers={"If-None-Match": etag, "Content-Length": "0"}).headers)
        assert len(app.calls) == 3
        # without CORS in the policy an Origin changes nothing: answered here
        assert http.get(path, headers={"Origin": "https://example.org"}).content == first.content
        assert len(app.calls) == 3


def test_cors_as_the_app_answers_it(tmp_path):
    """With `[serve] cors_origins`: an allowed Origin gets Access-Control-Allow-Origin, another none, both with
    `Vary: Origin` once, here as from the app."""
    folder, policy, article, _ = batched(tmp_path, LEXICAL_POLICY + '\n[serve]\ncors_origins = ["https://a.example"]\n')
    app = Counting(create_app(folder, policy=policy))
    path = f"/related/{article}"
    with live_server(app, http=StoredAnswersProtocol) as base, httpx.Client(base_url=base) as http:
        first = http.get(path)
        assert first.headers["x-recommender-answer"] == "stored-list" and first.headers["vary"] == "Origin"
        for origin in ("https://a.example", "https://b.example"):
            for extra in ({}, {"If-None-Match": first.headers["etag"]}):
                calls = len(app.calls)
                here = http.get(path, headers={"Origin": origin, **extra})
                assert len(app.calls) == calls
                by_app = http.get(path, headers={"Origin": origin, "Content-Length": "0", **extra})
                assert len(app.calls) == calls + 1
                assert without_date(here.headers) == without_date(by_app.headers) and here.content == by_app.content
                assert here.headers.get("access-control-allow-origin") == (
                    origin if origin == "https://a.example" else None)


def test_a_pin_is_live_on_the_next_request_and_a_swap_at_once_both_under_new_etags(served):
    base, app, folder, article, links = served
    path = f"/related/{article}"
    with httpx.Client(base_url=base) as http:  # one keep-alive connection throughout
        http.get(path)
        etag = http.get(path).headers["etag"]
        with Overrides.open(folder) as store:  # as `recommender pin` or another worker process writes it
            store.pin(article, links[1].id)
        pinned = http.get(path, headers={"If-None-Match": etag})
        assert pinned.status_code == 200 and pinned.headers["etag"] != etag
        assert [r["id"] for r in pinned.json()["related"]][:2] == [links[1].id, links[0].id]
        assert pinned.json()["related"][0]["pinned"]
        calls = len(app.calls)
        again = http.get(path, headers={"If-None-Match": pinned.headers["etag"]})
        assert again.status_code == 304 and len(app.calls) == calls  # kept again, answered without the app

        version = http.get("/health").json()["version"]
        manifest = read_manifest(folder)
        manifest.built_at = f"{manifest.built_at[:10]}T00:00:01Z"
        write_manifest(folder, manifest)  # a new version, committed as a build commits one
        time.sleep(0.1)  # the manifest is looked at every 50 ms
        health = http.get("/health").json()  # waits for the version being opened
        assert health["swaps"] == 1 and health["version"] != version
        swapped = http.get(path, headers={"If-None-Match": pinned.headers["etag"]})
        assert swapped.status_code == 200 and swapped.headers["etag"] != pinned.headers["etag"]
        assert swapped.json()["version"] == health["version"] and swapped.json()["related"] == pinned.json()["related"]
        assert len(app.calls) == calls + 2  # the two /health: the new version's answer was made before the swap


def test_pipelined_requests_are_answered_in_order_when_some_go_to_the_app(served):
    base, app, folder, article, links = served
    path = f"/related/{article}"
    httpx.get(base + path)  # kept
    port = int(base.rsplit(":", 1)[1])
    kept = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(kept + health + kept + kept)
        received, deadline = b"", time.monotonic() + 10
        while received.count(b"HTTP/1.1 ") < 4 and time.monotonic() < deadline:
            received += sock.recv(65536)
    answers = received.split(b"HTTP/1.1 200 OK")[1:]
    assert [b'"status"' in part for part in answers] == [False, True, False, False]
    assert [b'"related"' in part for part in answers] == [True, False, True, True]
    assert app.calls == [path, "/health", path, path]  # after the app's /health, the rest waited for it in order


def test_keep_alive_a_connection_asking_is_kept_open_and_a_silent_one_closed(tmp_path):
    folder, policy, article, _ = batched(tmp_path, LEXICAL_POLICY)
    request = f"GET /related/{article} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with live_server(create_app(folder, policy=policy), http=StoredAnswersProtocol, timeout_keep_alive=1) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            assert one_response(sock).startswith(b"HTTP/1.1 200 OK")  # made by the app, then kept
            for _ in range(8):  # 2.4 s of kept answers, longer than the keep-alive timeout
                time.sleep(0.3)
                sock.sendall(request)
                assert one_response(sock).startswith(b"HTTP/1.1 200 OK")
            time.sleep(2.5)  # silent for more than twice the timeout
            assert sock.recv(65536) == b""  # closed by the server


def one_response(sock) -> bytes:
    """One whole response with a Content-Length from the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += received(sock)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += received(sock)
    assert len(body) == length
    return data


def received(sock) -> bytes:
    data = sock.recv(65536)
    assert data, "the server closed the connection"
    return data


def test_a_request_framed_otherwise_goes_to_uvicorn_and_nothing_is_smuggled_in_a_body(served):
    """Whatever uvicorn's parser would refuse or frame with a body is not answered here: a bare LF, a folded line,
    a bad header name get uvicorn's 400; a body (Content-Length, chunked) that holds a request stays a body."""
    base, app, folder, article, links = served
    path = f"/related/{article}"
    httpx.get(base + path)  # kept
    port = int(base.rsplit(":", 1)[1])

    def exchange(raw: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            return received

    start = f"GET {path} HTTP/1.1\r\n".encode()
    for malformed in (b"Host: x\nContent-Length: 5\r\n\r\nhello", b"Host: x\r\n folded: on\r\n\r\n",
                      b"Bad Name: x\r\n\r\n", b"Host: x\rY: z\r\n\r\n"):
        assert exchange(start + malformed).startswith(b"HTTP/1.1 400 "), malformed
    inner = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    calls = len(app.calls)
    for framing in (f"Content-Length: {len(inner)}\r\n\r\n".encode() + inner,
                    f"Transfer-Encoding: chunked\r\n\r\n{len(inner):x}\r\n".encode() + inner + b"\r\n0\r\n\r\n"):
        answered = exchange(start + b"Host: x\r\nConnection: close\r\n" + framing)
        assert answered.count(b"HTTP/1.1 ") == 1 and b'"related"' in answered and b'"status"' not in answered
    assert app.calls[calls:] == [path, path]  # both by the app, which read the body as a body
