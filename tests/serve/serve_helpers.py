"""What the service's tests share (imported by name: `from serve_helpers import ...`): a server on loopback (real
uvicorn, in a thread) and a small index whose ids, titles and URLs are hostile (quotes, markup, event handlers), with one unpublished draft."""

import contextlib
import json

import pytest

from livehttp import live_server as serve_in_thread

# Each payload sets window.__xss (or opens a dialog) if it ever runs as script in the editors' page.
HOSTILE_ID = 'xss" onmouseover="window.__xss=1" x="'
HOSTILE_ID_2 = "a'><svg onload=window.__xss=2>"
HOSTILE_TITLE = '" autofocus onfocus="window.__xss=3" x="'
HOSTILE_URL = 'https://example.org/a"onmouseover="window.__xss=4'
HOSTILE_ITEMS = [
    {"id": HOSTILE_ID, "title": "Wind farms offshore", "url": HOSTILE_URL, "published": "2030-01-03",
     "text": "Wind turbines on offshore farms set a power output record; the grid stores it in batteries."},
    {"id": HOSTILE_ID_2, "title": HOSTILE_TITLE, "published": "2030-01-02",
     "text": "Offshore wind turbines and grid batteries: the farms record more power every year."},
    {"id": "plain/wind", "title": "Wind power grows", "published": "2030-01-01",
     "text": "Wind turbines, offshore farms and grid storage: power from wind grows."},
    {"id": "draft/wind", "title": "Draft on wind", "published": False,
     "text": "Wind turbines offshore farms power grid storage batteries record."},
]


@pytest.fixture(scope="session")
def hostile_index(tmp_path_factory):
    from recommender import build_index

    corpus = tmp_path_factory.mktemp("hostile-corpus")
    (corpus / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in HOSTILE_ITEMS))
    folder = tmp_path_factory.mktemp("hostile-index")
    build_index(corpus, folder, model="hashing", progress=False)
    return folder


@pytest.fixture
def live_server():
    """start(app) serves an ASGI app on a free loopback port (livehttp.live_server) and returns its base URL; stopped
    after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_in_thread(app))
