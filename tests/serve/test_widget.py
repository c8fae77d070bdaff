"""The widget's server side: /widget.js is served, and GET /related carries CORS headers for the policy's
`[serve] cors_origins` only (preflight included); the rest of the API and other origins get none."""

import pytest
from starlette.testclient import TestClient

from recommender.rank.policy import PolicyError, policy_from_dict
from recommender.serve.app import create_app

SITE = "https://www.example.com"


@pytest.fixture
def client(index_copy):
    policy = policy_from_dict({"serve": {"cors_origins": [SITE, "http://127.0.0.1:8080"]}})
    with TestClient(create_app(index_copy, policy=policy)) as c:
        yield c


def test_widget_js_is_served(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "document.currentScript" in response.text and "innerHTML" not in response.text


def test_cors_for_the_policys_origins_on_related_only(client):
    ref = "text/marathon"
    allowed = client.get(f"/related/{ref}", headers={"Origin": SITE})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == SITE
    assert "Origin" in allowed.headers["vary"]
    other = client.get(f"/related/{ref}", headers={"Origin": "https://evil.example.net"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in client.get("/info", headers={"Origin": SITE}).headers
    preflight = {"Origin": SITE, "Access-Control-Request-Method": "GET"}
    ok = client.options("/related", headers=preflight)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == SITE
    refused = client.options("/related", headers={**preflight, "Origin": "https://evil.example.net"})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    post = client.options("/related", headers={**preflight, "Access-Control-Request-Method": "POST"})
    assert post.status_code == 400


def test_no_cors_without_origins_in_the_policy(index_copy):
    with TestClient(create_app(index_copy)) as c:
        response = c.get("/related/text/marathon", headers={"Origin": SITE})
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
        assert c.get("/widget.js").status_code == 200


@pytest.mark.parametrize("origins, problem", [
    (["https://www.example.com/"], "is not an origin"), (["www.example.com"], "is not an origin"),
    ([1], "must be a list of text")])
def test_a_wrong_origin_is_refused_naming_the_key(origins, problem):
    with pytest.raises(PolicyError, match=r"\[serve\] cors_origins.*" + problem):
        policy_from_dict({"serve": {"cors_origins": origins}}, "site.toml")
