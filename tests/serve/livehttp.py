"""What the browser tests share: the system Chromium, and a real uvicorn server on a free loopback port."""

import contextlib
import shutil
import socket
import threading
import time


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()
NO_CHROMIUM = "no Chromium on this machine: scripts/install-test-tools installs it (needs root apt-get)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(app, port: int | None = None, **config):
    """Serve the ASGI `app` with uvicorn in a thread (`config`: more of uvicorn.Config's settings, e.g. `http`, the
    protocol `recommender serve` runs); yields its base URL."""
    import uvicorn

    port = port or free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(5)
