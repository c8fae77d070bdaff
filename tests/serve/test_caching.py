"""`recommender serve` for a busy site: stored answers kept as bytes with the overrides applied, HTTP caching
(ETag from the index version and the overrides' version, 304, Cache-Control), heavy work off the event loop, and
several worker processes."""

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from starlette.testclient import TestClient

from recommender import Index
from recommender.batch.nightly import run_batch
from recommender.rank.overrides import Overrides
from recommender.rank.policy import load_policy
from recommender.serve.app import create_app
from recommender.store.manifest import read_manifest, write_manifest

from conftest import FIXTURES, LEXICAL_POLICY, ROOT

AUTH = {"Authorization": "Bearer secret"}


@pytest.fixture
def batched(tmp_path, lexical_policy):
    """An index after a nightly batch (so with stored lists), and the policy both rank under."""
    policy = load_policy(lexical_policy)
    record = run_batch(FIXTURES / "corpus", tmp_path / "idx", tmp_path / "out", policy, model="hashing",
                       progress=False)
    assert record.stored_lists == "stored"
    return tmp_path / "idx", policy


def commit_new_version(folder, n=1):
    """A new index version, committed the way a build commits one (the manifest, renamed over the old)."""
    manifest = read_manifest(folder)
    manifest.built_at = f"{manifest.built_at[:10]}T00:00:{n:02d}Z"
    write_manifest(folder, manifest)


def test_stored_answers_are_kept_with_etags_and_follow_pins_and_swaps(batched):
    folder, policy = batched
    with Index.open(folder) as index:
        stored = {ref: index.related_answer(ref, policy=policy) for ref in index.data.store.ids()}
        computed = {ref: index.related(ref, policy=policy) for ref in index.data.store.ids()}
    a = next(ref for ref, (links, how) in stored.items() if how == "stored-list" and len(links) >= 2)
    target = stored[a][0][1].id  # pinned, the second link comes first
    app = create_app(folder, editor=True, token="secret", policy=policy)
    with TestClient(app) as c:
        first, kept = c.get(f"/related/{a}"), c.get(f"/related/{a}")
        assert first.headers["x-recommender-answer"] == "stored-list"
        assert first.json()["related"] == [r.to_dict() for r in stored[a][0]]
        # what the service computes, but the per-signal parts (as `related --json` prints a stored answer)
        assert first.json()["related"] == [{k: v for k, v in r.to_dict().items() if k != "parts"}
                                           for r in computed[a]]
        assert kept.content == first.content and kept.headers["etag"] == first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=300" and "vary" not in first.headers
        etag = first.headers["etag"]
        again = c.get(f"/related/{a}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert c.get(f"/related/{a}", headers={"If-None-Match": '"other"'}).status_code == 200

        # a pin through the API: live on the next request, under a new ETag (the old one no longer matches)
        assert c.post("/overrides", json={"action": "pin", "article": a, "target": target},
                      headers=AUTH).status_code == 200
        pinned = c.get(f"/related/{a}", headers={"If-None-Match": etag})
        assert pinned.status_code == 200 and pinned.headers["etag"] != etag
        assert [r["id"] for r in pinned.json()["related"]][:2] == [target, stored[a][0][0].id]
        assert pinned.json()["related"][0]["pinned"]
        assert pinned.headers["x-recommender-answer"] == "stored-list"  # the pin applied to the stored list
        with Index.open(folder) as index:
            assert pinned.json()["related"] == [r.to_dict() for r in index.related_answer(a, policy=policy)[0]]
        # an unpin by the CLI's store (or another worker process): live at once too, and the first ETag is back
        with Overrides.open(folder) as store:
            store.unpin(a, target)
        unpinned = c.get(f"/related/{a}")
        assert unpinned.content == first.content and unpinned.headers["etag"] == etag

        # a new index version: a new ETag and the new version in the answer
        before = c.get("/health").json()["version"]
        commit_new_version(folder)
        after = c.get("/health").json()
        assert after["version"] != before and after["swaps"] == 1
        # made again for the new version before the swap, as the old version had kept it
        assert (f"/related/{a}", b"") in app.state.follower.current.extra["answers"].kept
        swapped = c.get(f"/related/{a}", headers={"If-None-Match": etag})
        assert swapped.status_code == 200 and swapped.headers["etag"] != etag
        assert swapped.json()["version"] == after["version"]
        assert swapped.json()["related"] == first.json()["related"]

        # computed answers carry their own ETags: 304 without ranking again
        explained = c.get(f"/related/{a}", params={"explain": "true"})
        assert explained.headers["x-recommender-answer"] == "computed"
        assert c.get(f"/related/{a}", params={"explain": "true"},
                     headers={"If-None-Match": explained.headers["etag"]}).status_code == 304


def test_max_age_comes_from_the_policy(index_copy):
    from recommender.rank.policy import policy_from_dict

    ref = Index.open(index_copy).data.store.ids()[0]
    with TestClient(create_app(index_copy, policy=policy_from_dict({"serve": {"max_age": 0}}))) as c:
        response = c.get(f"/related/{ref}")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-recommender-answer"] == "computed"  # no batch ran: no stored lists


def test_check_runs_off_the_event_loop(index_copy, monkeypatch):
    """While the editors' check runs (here a slow fake that waits to be released), /related, /search-free
    endpoints and /health still answer."""
    from recommender.serve import editor_api

    started, release = threading.Event(), threading.Event()

    def slow_check(index, **kwargs):
        started.set()
        assert release.wait(10), "the check was never released: something waited for it"
        return []

    monkeypatch.setattr(editor_api, "editors_check", slow_check)
    ids = Index.open(index_copy).data.store.ids()
    with TestClient(create_app(index_copy, editor=True)) as c:
        done = {}
        checker = threading.Thread(target=lambda: done.update(check=c.get("/check")))
        checker.start()
        assert started.wait(10)
        for ref in ids[:3]:
            assert c.get(f"/related/{ref}").status_code == 200
        assert c.get("/health").status_code == 200
        assert checker.is_alive() and "check" not in done  # all that was answered while the check ran
        release.set()
        checker.join(10)
        assert done["check"].status_code == 200 and done["check"].json()["items"] == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_workers_start_several_processes_that_answer(index_copy):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen([sys.executable, "-m", "recommender.cli", "serve", "--index", str(index_copy),
                               "--port", str(port), "--workers", "2"], env=env, stderr=subprocess.PIPE)
    ref = Index.open(index_copy).data.store.ids()[0]
    pids, deadline = set(), time.monotonic() + 60
    try:
        while len(pids) < 2 and time.monotonic() < deadline:
            try:  # a new connection each time: the kernel hands it to one of the processes
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                    pids.add(http.get("/health").json()["pid"])
                    assert http.get(f"/related/{ref}").status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert len(pids) == 2 and server.pid not in pids, err.decode()[-2000:]


def test_an_id_with_a_query_is_kept_and_made_again_across_a_swap(tmp_path):
    """/related/youtube.com/watch?v=...: the query's other parameters are part of the id (serve/protocol.py), for
    the kept answer and for the one made again before a swap alike."""
    import json

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = ["Penalty shoot-out decides the cup final", "Goalkeeper saves two penalties in the cup final",
             "A cup final decided by penalties again", "Slow roasted tomato soup with basil",
             "Basil pesto and tomato pasta for weeknights", "Roasted tomato and basil bread"]
    (corpus / "videos.jsonl").write_text("".join(json.dumps(
        {"title": t, "text": (t + ". ") * 3, "url": f"https://www.youtube.com/watch?v=clip{n}"}) + "\n"
        for n, t in enumerate(texts)))
    (tmp_path / "words.toml").write_text(LEXICAL_POLICY)
    policy = load_policy(tmp_path / "words.toml")
    record = run_batch(corpus, tmp_path / "idx", tmp_path / "out", policy, model="hashing", progress=False)
    assert record.stored_lists == "stored"
    app = create_app(tmp_path / "idx", policy=policy)
    with TestClient(app) as c:
        first = c.get("/related/youtube.com/watch?v=clip1&k=2")
        assert first.status_code == 200 and first.headers["x-recommender-answer"] == "stored-list"
        assert first.json()["query"]["id"] == "youtube.com/watch?v=clip1" and first.json()["related"]
        key = ("/related/youtube.com/watch", b"v=clip1&k=2")
        assert key in app.state.follower.current.extra["answers"].kept
        commit_new_version(tmp_path / "idx")
        assert c.get("/health").json()["swaps"] == 1
        assert key in app.state.follower.current.extra["answers"].kept  # made again for the new version
        again = c.get("/related/youtube.com/watch?v=clip1&k=2")
        assert again.json()["query"]["id"] == "youtube.com/watch?v=clip1"
        assert again.json()["related"] == first.json()["related"]
