"""About 40 hostile HTTP requests to `recommender serve --editor` on loopback: huge bodies (declared and chunked),
deep JSON, bad tokens, hostile ids and paths, bad query values, `?`/`%00`/`..` in ids, wrong methods. Prints one
line per request (what was sent, the status, the seconds), then the count of 5xx answers and of hangs (no answer
within --timeout seconds). Goal: 0 and 0.

    PYTHONPATH=$PWD python scripts/hostile_requests.py [--index DIR] [--timeout 10]

Without --index it indexes demo/ with the hashing embedder into a temporary folder; with one, it serves a
temporary copy (the original is never written). Requests go over raw sockets, so malformed ones reach the server
as written."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hostile-test-token"
MB = 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
    head = {"Host": "127.0.0.1", "Connection": "close", **(headers or {})}
    if body is not None and "Content-Length" not in head and "Transfer-Encoding" not in head:
        head["Content-Length"] = str(len(body))
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def send(port: int, head: bytes, stream=None, timeout: float = 10.0) -> tuple[str, float, int]:
    """Send `head` (then the chunks of `stream` until the server answers); the status (or "hang" / "closed"),
    the seconds, and the body bytes streamed."""
    start = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        answer = b""
        try:
            sock.sendall(head)
            if stream is not None:
                sock.setblocking(False)
                pending = b""
                while True:  # a partly sent chunk is finished before the next (chunked framing stays whole)
                    try:
                        answer += sock.recv(65536)
                    except BlockingIOError:
                        pass
                    if answer or time.monotonic() - start > timeout:
                        break
                    pending = pending or next(stream)
                    try:
                        n = sock.send(pending)
                        sent, pending = sent + n, pending[n:]
                    except BlockingIOError:
                        time.sleep(0.005)
                sock.setblocking(True)
                sock.settimeout(max(0.1, timeout - (time.monotonic() - start)))
            while b"\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except socket.timeout:
            return "hang", time.monotonic() - start, sent
        except (BrokenPipeError, ConnectionResetError):
            pass
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
    return status, time.monotonic() - start, sent


def forever(block: bytes):
    while True:
        yield block


def cases(ids: dict) -> list[tuple[str, bytes, object]]:
    a, b, draft = ids["a"], ids["b"], ids["draft"]
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    js = {"Content-Type": "application/json"}
    block = b"x" * 65536
    chunk = b"%x\r\n" % len(block) + block + b"\r\n"
    deep = b"[" * 100_000 + b"]" * 100_000

    def post(path, value, headers=js):
        return request("POST", path, json.dumps(value).encode(), headers)

    return [
        ("POST /search 300 MB, Content-Length", request("POST", "/search", None, {**js, "Content-Length": str(300 * MB)}),
         forever(block)),
        ("POST /search 300 MB, chunked", request("POST", "/search", None, {**js, "Transfer-Encoding": "chunked"}),
         forever(chunk)),
        ("POST /overrides 300 MB, no token", request("POST", "/overrides", None, {**js, "Content-Length": str(300 * MB)}),
         forever(block)),
        ("POST /overrides 300 MB chunked, token", request("POST", "/overrides", None, {**auth, "Transfer-Encoding": "chunked"}),
         forever(chunk)),
        ("POST /search 1.5 MB text", post("/search", {"text": "wind " * 300_000}), None),
        ("POST /search JSON 100,000 deep", request("POST", "/search", deep, js), None),
        ("POST /search text nested 40 deep", request("POST", "/search", b'{"text": ' + b"[" * 40 + b"]" * 40 + b"}", js), None),
        ("POST /overrides JSON 100,000 deep", request("POST", "/overrides", deep, auth), None),
        ("POST /search not JSON", request("POST", "/search", b"text=wind", js), None),
        ("POST /search invalid UTF-8", request("POST", "/search", b'{"text": "\xff\xfe wind"}', js), None),
        ("POST /search lone surrogate", request("POST", "/search", b'{"text": "\\ud800 wind"}', js), None),
        ("POST /search JSON array", post("/search", ["wind"]), None),
        ("POST /search text 12", post("/search", {"text": 12}), None),
        ("POST /search k 10**100", post("/search", {"text": "wind", "k": 10**100}), None),
        ("POST /search k NaN", request("POST", "/search", b'{"text": "wind", "k": NaN}', js), None),
        ("POST /search Content-Length abc", request("POST", "/search", b"{}", {**js, "Content-Length": "abc"}), None),
        ("POST /search Content-Length -5", request("POST", "/search", b"{}", {**js, "Content-Length": "-5"}), None),
        ("POST /overrides no token", post("/overrides", {"action": "pin", "article": a, "target": b}), None),
        ("POST /overrides wrong token", post("/overrides", {"action": "pin", "article": a, "target": b},
                                              {**js, "Authorization": "Bearer " + TOKEN[:-1] + "X"}), None),
        ("POST /overrides latin-1 token", request("POST", "/overrides", b"{}", {**js, "Authorization": "Bearer t\xe9st"}), None),
        ("POST /overrides 8 KB token", post("/overrides", {}, {**js, "Authorization": "Bearer " + "t" * 8000}), None),
        ("POST /overrides Basic auth", post("/overrides", {}, {**js, "Authorization": "Basic " + TOKEN}), None),
        ("POST /overrides note 500 KB", post("/overrides", {"action": "block", "article": a, "target": b,
                                                             "note": "n" * 500_000}, auth), None),
        ("POST /overrides note with ESC", post("/overrides", {"action": "block", "article": a, "target": b,
                                                               "note": "\x1b[2Jgone"}, auth), None),
        ("POST /overrides pin to a draft", post("/overrides", {"action": "pin", "article": a, "target": draft}, auth), None),
        ("POST /overrides action 'drop'", post("/overrides", {"action": "drop", "article": a, "target": b}, auth), None),
        ("POST /overrides targets 'x'", post("/overrides", {"action": "order", "article": a, "targets": "x"}, auth), None),
        ('GET /related/ id with quotes', request("GET", '/related/xss%22%20onmouseover=%22alert(1)'), None),
        ("GET /related/ ../../etc/passwd", request("GET", "/related/../../etc/passwd"), None),
        ("GET /related/ %2e%2e%2f%2e%2e%2fetc", request("GET", "/related/%2e%2e%2f%2e%2e%2fetc%2fpasswd"), None),
        ("GET /related/ id%00", request("GET", f"/related/{a}%00"), None),
        ("GET /related/ id%3Fx (? in id)", request("GET", f"/related/{a}%3Fx=1"), None),
        ("GET /related/ %ff%fe", request("GET", "/related/%ff%fe"), None),
        ("GET /related/ 10 KB id", request("GET", "/related/" + "a" * 10_000), None),
        ("GET /related?url=javascript:", request("GET", "/related?url=javascript:alert(1)"), None),
        ("GET /related/id?k=0", request("GET", f"/related/{a}?k=0"), None),
        ("GET /related/id?k=1e9", request("GET", f"/related/{a}?k=1e9"), None),
        ("GET /related/id?k=%00", request("GET", f"/related/{a}?k=%00"), None),
        ("GET /related/id?explain=maybe", request("GET", f"/related/{a}?explain=maybe"), None),
        ("GET /articles?k=-1", request("GET", "/articles?k=-1"), None),
        ("GET /articles?q=%00<script>", request("GET", "/articles?q=%00%3Cscript%3E"), None),
        ("GET /check?id=..%2F..", request("GET", "/check?id=..%2F.."), None),
        ("GET /overrides?article=%00", request("GET", "/overrides?article=%00"), None),
        ("GET /search (wrong method)", request("GET", "/search"), None),
        ("DELETE /overrides", request("DELETE", "/overrides"), None),
        ("PUT /related/id", request("PUT", f"/related/{a}", b"{}"), None),
        ("TRACE /", request("TRACE", "/"), None),
        ("GET /../../etc/passwd", request("GET", "/../../etc/passwd"), None),
        ("GET /editor.js/../app.py", request("GET", "/editor.js/../app.py"), None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="an index to serve (a temporary copy); default: demo/, hashing")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds without an answer that make a hang")
    args = parser.parse_args()
    from recommender import Index, build_index

    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    folder = work / "idx"
    if args.index:
        shutil.copytree(args.index, folder)
    else:
        build_index(ROOT / "demo", folder, model="hashing", progress=False)
    with Index.open(folder) as index:
        infos = index.data.store.all()
    published = [i.id for i in infos if not i.draft]
    ids = {"a": published[0], "b": published[1], "draft": next((i.id for i in infos if i.draft), published[2])}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "recommender.cli", "serve", "--index", str(folder), "--editor",
                               "--token", TOKEN, "--port", str(port), "-q"], stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(server.stderr.read().decode())
                time.sleep(0.1)
        results = []
        print(f"{'request':42}  status  seconds  bytes sent")
        for name, head, stream in cases(ids):
            status, seconds, sent = send(port, head, stream, args.timeout)
            results.append(status)
            print(f"{name:42}  {status:>6}  {seconds:7.2f}  {sent if stream is not None else len(head):>15,}")
        alive = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status
        fivexx = sum(s.startswith("5") for s in results)
        print(f"\n{len(results)} requests: {fivexx} answered 5xx, {results.count('hang')} hangs, "
              f"{results.count('closed')} closed without an answer; /health afterwards: {alive}")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
