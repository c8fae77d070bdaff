"""What one request may cost `recommender serve`: a body over the limit is refused (413) having read no more than
the limit (declared or chunked, on a real server), JSON nested too deep is a 400 (not a 500), an editor's note is
bounded (in the library, so the CLI and the API share it), the token is compared in constant time, and every
response carries the security headers."""

import socket
import time

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from recommender.cli import cli
from recommender.rank.overrides import MAX_NOTE, Overrides
from recommender.serve import protocol
from recommender.serve.app import create_app
from recommender.serve.limits import MAX_BODY, MAX_DEPTH

from serve_helpers import live_server  # noqa: F401


@pytest.fixture
def client(index_copy):
    with TestClient(create_app(index_copy, editor=True, token="secret")) as c:
        yield c


def post_until_answered(base: str, headers: str, chunks, most: int) -> tuple[bytes, int]:
    """POST /search with `headers`, sending `chunks` until the server answers (or `most` bytes went out): the
    answer's first bytes and how many body bytes were sent."""
    host, port = base.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /search HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{headers}\r\n"
                     .encode())
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + 30
        pending = b""
        while True:  # a partly sent chunk is finished before the next (chunked framing stays whole)
            try:
                answer += sock.recv(4096)
            except BlockingIOError:
                pass
            if answer or sent >= most or time.monotonic() > deadline:
                break
            pending = pending or next(chunks)
            try:
                n = sock.send(pending)
                sent, pending = sent + n, pending[n:]
            except BlockingIOError:  # the server reads no more: wait for its answer
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        while b"\r\n\r\n" not in answer:
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    return answer, sent


def test_a_300_mb_body_is_refused_early_declared_or_chunked(index_copy, live_server):
    base = live_server(create_app(index_copy))
    block = b"x" * 65536
    declared, sent = post_until_answered(base, f"Content-Length: {300 * 2**20}\r\n", iter(lambda: block, None),
                                         most=300 * 2**20)
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    assert sent < 32 * 2**20  # answered before the body: what went out sits in the sockets' buffers
    chunk = b"%x\r\n" % len(block) + block + b"\r\n"
    chunked, sent = post_until_answered(base, "Transfer-Encoding: chunked\r\n", iter(lambda: chunk, None),
                                        most=300 * 2**20)
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    assert sent < MAX_BODY + 32 * 2**20
    assert b"at most" in declared or b"over" in declared


def test_deep_json_is_a_clear_400_and_a_body_at_the_limit_still_works(client):
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"text": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"):
        response = client.post("/search", content=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == f"the JSON body nests deeper than {MAX_DEPTH} levels, the most accepted"
    brackets_in_text = '{"text": "' + "[" * 5000 + ' wind"}'  # brackets inside a string are text, not nesting
    assert client.post("/search", content=brackets_in_text).status_code == 200
    assert client.post("/search", content=b" " * (MAX_BODY + 1)).status_code == 413
    assert client.post("/search", json={"text": "wind " * (MAX_BODY // 6)}).status_code == 200


def test_notes_are_bounded_for_the_library_the_cli_and_the_api(client, index_copy):
    with Overrides.open(index_copy) as store:
        ids = [o for o in client.get("/articles", params={"k": 3}).json()["articles"]]
        a, b = ids[0]["id"], ids[1]["id"]
        with pytest.raises(ValueError, match=f"at most {MAX_NOTE} characters"):
            store.pin(a, b, "n" * (MAX_NOTE + 1))
        with pytest.raises(ValueError, match="one line"):
            store.block(a, b, "first line\nsecond line")
        assert store.all() == []
    cli_run = CliRunner().invoke(cli, ["block", a, b, "--index", str(index_copy), "--note", "n" * 2**20])
    assert cli_run.exit_code == 1 and f"a note is at most {MAX_NOTE} characters" in cli_run.output
    assert len(cli_run.output) < 200
    api = client.post("/overrides", json={"action": "block", "article": a, "target": b, "note": "n" * 2**19},
                      headers={"Authorization": "Bearer secret"})
    assert api.status_code == 422 and f"at most {MAX_NOTE} characters" in api.json()["error"]
    assert client.get("/overrides").json()["overrides"] == []


def test_the_token_is_compared_in_constant_time(client, monkeypatch):
    compared = []
    real = protocol.hmac.compare_digest
    monkeypatch.setattr(protocol.hmac, "compare_digest", lambda x, y: compared.append((x, y)) or real(x, y))
    for given in ("Bearer secreT", "Bearer s\xe9cret".encode("latin-1"), "Bearer " + "s" * 10_000, "secret"):
        assert client.post("/overrides", json={}, headers={"Authorization": given}).status_code == 401
    assert len(compared) == 4 and all(expected == b"Bearer secret" for _, expected in compared)


def test_every_response_has_the_security_headers(client):
    for response in (client.get("/"), client.get("/editor.js"), client.get("/info"), client.get("/related/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    page = client.get("/").text
    assert "<script>" not in page and "<style>" not in page and " on" not in page.split("<body>")[1]
    assert client.get("/editor.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_an_unhandled_error_answers_500_with_the_security_headers(index_copy, monkeypatch):
    # Starlette's error page comes from its outermost middleware, outside SecurityHeaders: it must carry them too
    from recommender.serve import app as app_module

    async def broken(request, served):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module, "ROUTES", [("/info", broken, ["GET"])])
    with TestClient(create_app(index_copy), raise_server_exceptions=False) as c:
        response = c.get("/info")
    assert response.status_code == 500 and response.text == "Internal Server Error"
    assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
