"""Nothing leaves the machine: a query by id, a search and an index (the real model, the demo corpus) and the
service answering a request run under `strace -f -e trace=network`, which records every socket call of every
process and thread; any connect/send to an address other than loopback, or to port 53 (a DNS lookup), fails the
test. Unix sockets and the service's own loopback traffic are allowed. The environment given to the commands has
none of the Hugging Face or Ray switches the test suite sets, so what keeps them offline is the project itself
(recommender/common/offline.py)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRACE = shutil.which("strace")
# connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}, 16)
# sendto(5, ..., {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=..., inet_pton(AF_INET6, "::1", ...)
CALL = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(\d+, .*?sa_family=(AF_INET6?)\b(.*)")
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def traced_ok() -> bool:
    if STRACE is None:
        return False
    return subprocess.run([STRACE, "-f", "-qq", "-e", "trace=network", "-o", os.devnull, "true"],
                          capture_output=True).returncode == 0


pytestmark = [pytest.mark.model, pytest.mark.skipif(
    not traced_ok(), reason="strace is missing or cannot trace here (no ptrace): scripts/install-test-tools installs it")]


def offending(trace: Path) -> list[str]:
    """The socket calls of a trace that reach past loopback, or to port 53."""
    bad = []
    for line in trace.read_text(errors="replace").splitlines():
        match = CALL.search(line)
        if not match:
            continue
        port = PORT.search(match.group(3))
        address = ADDRESS.search(match.group(3))
        host = address and (address.group(1) or address.group(2))
        loopback = host is not None and (host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1"))
        if not loopback or (port and port.group(1) == "53"):
            bad.append(line.strip()[:200])
    return bad


def clean_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TRANSFORMERS_", "RAY_")) and k != "DO_NOT_TRACK"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def traced(tmp_path: Path, name: str, *args: str) -> tuple[list[str], Path]:
    trace = tmp_path / f"{name}.strace"
    command = [STRACE, "-f", "-qq", "-e", "trace=network", "-o", str(trace), "--",
               sys.executable, "-m", "recommender.cli", *args]
    return command, trace


def run_traced(tmp_path: Path, name: str, *args: str) -> tuple[str, list[str]]:
    command, trace = traced(tmp_path, name, *args)
    result = subprocess.run(command, capture_output=True, text=True, env=clean_env(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, offending(trace)


def test_index_query_search_and_service_try_no_network(tmp_path):
    index = tmp_path / "idx"
    _, bad = run_traced(tmp_path, "index", "index", str(ROOT / "demo"), "--index", str(index), "-q")
    assert bad == [], f"`index` tried the network: {bad}"
    out, bad = run_traced(tmp_path, "related", "related", "text/renters-savings", "--index", str(index), "-q")
    assert out.strip()
    assert bad == [], f"`related` tried the network: {bad}"
    out, bad = run_traced(tmp_path, "search", "search", "wind power record", "--index", str(index), "-q")
    assert out
    assert bad == [], f"`search` tried the network: {bad}"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command, trace = traced(tmp_path, "serve", "serve", "--index", str(index), "--port", str(port), "-q")
    server = subprocess.Popen(command, env=clean_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.1)
        request = urllib.request.Request(base + "/search", data=b'{"text": "wind power", "k": 3}',
                                         headers={"Content-Type": "application/json"})
        assert b"related" in urllib.request.urlopen(request, timeout=120).read()
        assert b"related" in urllib.request.urlopen(base + "/related/text/renters-savings", timeout=60).read()
    finally:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        for pid in pids:  # the traced server: stopped the way an operator stops it; strace then exits
            os.kill(int(pid), signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    bad = offending(trace)
    assert bad == [], f"the service tried the network: {bad}"
    assert "127.0.0.1" in trace.read_text()  # the trace saw the service's own (allowed) loopback socket
