"""`recommender serve`: the API answers what the library answers, follows new index versions atomically, refuses
broken versions and unauthorised writes, and reports bad requests in one line."""

import json
import shutil
import threading

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from recommender import Index, build_index
from recommender.cli import cli
from recommender.store.manifest import MANIFEST_NAME
from recommender.serve.app import create_app

from conftest import FIXTURES


@pytest.fixture
def client(index_copy):
    with TestClient(create_app(index_copy, editor=True, token="secret")) as c:
        yield c


def library_related(folder, ref, k=None, **kwargs):
    with Index.open(folder) as index:
        return [r.to_dict() for r in index.related(ref, k, **kwargs)]


def ids_of(folder):
    with Index.open(folder) as index:
        return index.data.store.ids()


def test_related_info_search_equal_the_library(client, index_copy):
    ids = ids_of(index_copy)
    for ref in ids[:4]:
        body = client.get(f"/related/{ref}", params={"k": 3}).json()
        assert body["query"]["id"] == ref
        assert body["related"] == library_related(index_copy, ref, 3)
    explained = client.get(f"/related/{ids[0]}", params={"explain": "true"}).json()["related"]
    assert explained == library_related(index_copy, ids[0], explain=True)
    assert all("explanation" in r and "parts" in r for r in explained)
    with Index.open(index_copy) as index:
        url_article = next(i for i in index.data.store.all() if i.url)
        expected_info = index.info()
        expected_search = [r.to_dict() for r in index.search("wind turbines record", 4)]
    by_url = client.get("/related", params={"url": url_article.url}).json()
    assert by_url["query"]["id"] == url_article.id
    assert by_url["related"] == library_related(index_copy, url_article.id)
    info = client.get("/info").json()
    assert {k: v for k, v in info.items() if k != "version"} == json.loads(json.dumps(expected_info))
    assert client.post("/search", json={"text": "wind turbines record", "k": 4}).json()["related"] == expected_search


def test_bad_ids_404_and_bad_params_422_in_one_line(client, index_copy):
    ref = ids_of(index_copy)[0]
    for response, status in [
        (client.get("/related/no/such/article"), 404),
        (client.get("/related", params={"url": "https://nowhere.example/x"}), 404),
        (client.get(f"/related/{ref}", params={"k": "0"}), 422),
        (client.get(f"/related/{ref}", params={"k": "ten"}), 422),
        (client.get(f"/related/{ref}", params={"explain": "maybe"}), 422),
        (client.get("/related"), 422),
        (client.post("/search", json={"text": "  "}), 422),
        (client.post("/search", json={"text": "wind", "k": 2.5}), 422),
        (client.post("/search", content=b"not json"), 422),
    ]:
        assert response.status_code == status, response.text
        message = response.json()["error"]
        assert message and "\n" not in message
    assert "no article 'no/such/article'" in client.get("/related/no/such/article").json()["error"]


def test_a_bug_is_not_reported_as_a_bad_request(client, monkeypatch):
    """A ValueError that is not the project's InputError (a NumPy shape mismatch, say) is a server error with its
    traceback, not a 422 that blames the request."""
    import numpy as np

    monkeypatch.setattr(Index, "search", lambda self, *args, **kwargs: np.ones(3) @ np.ones(4))
    with pytest.raises(ValueError, match="mismatch"):
        client.post("/search", json={"text": "wind"})


def test_ids_with_a_query_need_no_escaping_and_partial_ids_get_suggestions(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = ["Penalty shoot-out decides the cup final", "Goalkeeper saves two penalties in the final",
             "A cup final decided by penalties again"]
    (corpus / "videos.jsonl").write_text("".join(json.dumps(
        {"title": t, "text": t + " in front of a full stadium.",
         "url": f"https://www.youtube.com/watch?v=clip{n}&t=10"}) + "\n" for n, t in enumerate(texts)))
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    with TestClient(create_app(tmp_path / "idx")) as c:
        plain = c.get("/related/youtube.com/watch?t=10&v=clip1&k=1")
        assert plain.status_code == 200, plain.text
        assert plain.json()["query"]["id"] == "youtube.com/watch?t=10&v=clip1"
        assert len(plain.json()["related"]) <= 1
        for other in ("/related/youtube.com/watch%3Ft=10%26v=clip1", "/related/youtube.com/watch?v=clip1&t=10"):
            assert c.get(other).json()["query"]["id"] == "youtube.com/watch?t=10&v=clip1"  # escaped, in URL order
        partial = c.get("/related/youtube.com/watch")
        assert partial.status_code == 404
        assert partial.json()["error"].endswith("closest ids: youtube.com/watch?t=10&v=clip0, "
                                                "youtube.com/watch?t=10&v=clip1, youtube.com/watch?t=10&v=clip2")


def test_writes_need_the_token_and_reach_the_cli_store(client, index_copy):
    a, b, c = ids_of(index_copy)[:3]
    pin = {"action": "pin", "article": a, "target": b}
    assert client.post("/overrides", json=pin).status_code == 401
    assert client.post("/overrides", json=pin, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert CliRunner().invoke(cli, ["overrides", "--index", str(index_copy)]).stdout == ""
    auth = {"Authorization": "Bearer secret"}
    assert client.post("/overrides", json=pin, headers=auth).status_code == 200
    assert client.post("/overrides", json={"action": "block", "article": a, "target": c}, headers=auth).status_code == 200
    listed = CliRunner().invoke(cli, ["overrides", "--index", str(index_copy)]).stdout.splitlines()
    assert listed == [f"block  {a}  ->  {c}", f"pin    {a}  ->  {b}"]
    related = client.get(f"/related/{a}").json()["related"]
    assert related[0]["id"] == b and related[0]["pinned"]
    assert c not in [r["id"] for r in related]
    assert client.post("/overrides", json={"action": "pin", "article": a, "target": "nope"},
                       headers=auth).status_code == 404


def test_read_only_server_refuses_writes(index_copy):
    with TestClient(create_app(index_copy, editor=True, token=None)) as c:
        a, b = ids_of(index_copy)[:2]
        response = c.post("/overrides", json={"action": "pin", "article": a, "target": b},
                          headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403 and "read-only" in response.json()["error"]
        assert c.get(f"/related/{a}").status_code == 200


def test_reorder_pins(client, index_copy):
    a, b, c = ids_of(index_copy)[:3]
    auth = {"Authorization": "Bearer secret"}
    for target in (b, c):
        client.post("/overrides", json={"action": "pin", "article": a, "target": target}, headers=auth)
    assert [r["id"] for r in client.get(f"/related/{a}").json()["related"][:2]] == [b, c]
    assert client.post("/overrides", json={"action": "order", "article": a, "targets": [c, b]},
                       headers=auth).status_code == 200
    assert [r["id"] for r in client.get(f"/related/{a}").json()["related"][:2]] == [c, b]
    assert library_related(index_copy, a)[0]["id"] == c  # the library (and so the CLI and batch) agree


def second_corpus(tmp_path):
    corpus = tmp_path / "corpus2"
    shutil.copytree(FIXTURES / "corpus", corpus)
    (corpus / "text" / "zz-new-article.md").write_text(
        "---\ntitle: Offshore wind farms and grid batteries store a record week\n---\n"
        "Grid operators paired offshore wind turbines with batteries during a record week of output.\n")
    return corpus


def test_swap_under_concurrent_requests(client, index_copy, tmp_path):
    ids = ids_of(index_copy)
    before = client.get("/health").json()["version"]
    expected = {before: {ref: library_related(index_copy, ref, 3) for ref in ids}}
    seen, errors, stop = [], [], threading.Event()

    def hammer(n):
        order = []
        while not stop.is_set():
            ref = ids[len(order) % len(ids)]
            response = client.get(f"/related/{ref}", params={"k": 3})
            if response.status_code != 200:
                errors.append(response.text)
                continue
            body = response.json()
            order.append(body["version"])
            seen.append((body["version"], ref, body["related"]))
        versions = [v for i, v in enumerate(order) if i == 0 or v != order[i - 1]]
        assert len(versions) <= 2, versions  # never back to the old version once the new one was served

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    build_index(second_corpus(tmp_path), index_copy, model="hashing", progress=False)  # commits a new version
    for _ in range(50):
        if client.get("/health").json()["version"] != before:
            break
    after = client.get("/health").json()
    for _ in range(500):  # let the clients get answers from the new version too
        if any(v == after["version"] for v, _, _ in seen[-8:]):
            break
        threading.Event().wait(0.01)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert after["version"] != before and after["swaps"] == 1 and after["status"] == "ok"
    expected[after["version"]] = {ref: library_related(index_copy, ref, 3) for ref in ids}
    assert {v for v, _, _ in seen} == set(expected)  # both versions were served during the run
    for version, ref, related in seen:  # each answer is entirely one version's answer
        assert related == expected[version][ref]
    assert client.get("/related/text/zz-new-article").status_code == 200


def test_broken_new_version_keeps_the_old_one_and_says_so(client, index_copy):
    ref = ids_of(index_copy)[0]
    good = client.get(f"/related/{ref}").json()
    manifest = json.loads((index_copy / MANIFEST_NAME).read_text())
    manifest["count"] += 1  # a committed version whose files do not match it
    tmp = index_copy / "manifest.tmp"
    tmp.write_text(json.dumps(manifest))
    tmp.replace(index_copy / MANIFEST_NAME)
    health = client.get("/health").json()
    assert health["status"] == "degraded" and health["version"] == good["version"]
    assert "rebuild" in health["problem"]
    assert client.get(f"/related/{ref}").json() == good


def test_editor_page_and_cli_command(index_copy):
    with TestClient(create_app(index_copy, editor=True)) as c:
        page = c.get("/")
        assert page.status_code == 200 and "<title>recommender: editors' links</title>" in page.text
        found = c.get("/articles", params={"q": "rover"}).json()["articles"]
        assert found and all("rover" in (a["title"] + a["id"]).lower() for a in found)
    with TestClient(create_app(index_copy)) as c:  # without --editor: the API only
        assert c.get("/").status_code == 404 and c.post("/overrides", json={}).status_code in (404, 405)
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--token" in result.output and "127.0.0.1" in result.output


def test_the_service_ranks_under_the_sites_policy(index_copy, lexical_policy):
    from recommender.rank.policy import load_policy

    policy = load_policy(lexical_policy).with_links(k=2)
    with TestClient(create_app(index_copy, policy=policy)) as c:
        served = c.get("/related/text/marathon").json()["related"]
        found = c.post("/search", json={"text": "marathon training"}).json()["related"]
    assert served == library_related(index_copy, "text/marathon", policy=policy) and len(served) == 2
    assert served != library_related(index_copy, "text/marathon")  # the defaults give another list here
    assert len(found) <= 2
    assert "--policy" in CliRunner().invoke(cli, ["serve", "--help"]).output
