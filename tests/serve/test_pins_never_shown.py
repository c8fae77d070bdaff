"""A pin that could never show is refused with the reason, by the API and by `recommender pin` alike (a draft
under a policy without drafts, a target blocked on every article), a stored one is listed with the reason;
`unblock` removes blocks, `unpin` pins; the editors' list opens on the most recent articles."""

import json
import shutil

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from recommender.cli import cli
from recommender.rank.overrides import Overrides
from recommender.rank.policy import load_policy
from recommender.serve.app import create_app

from serve_helpers import HOSTILE_ID, HOSTILE_ID_2, hostile_index  # noqa: F401

AUTH = {"Authorization": "Bearer secret"}
DRAFT_REASON = "draft/wind is unpublished (a draft), and the policy links no drafts (include_drafts = false)"


@pytest.fixture
def folder(hostile_index, tmp_path):
    shutil.copytree(hostile_index, tmp_path / "idx")
    return tmp_path / "idx"


def cli_run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_api_refuses_pins_that_never_show_and_lists_stored_ones_with_the_reason(folder):
    with TestClient(create_app(folder, editor=True, token="secret")) as client:
        refused = client.post("/overrides", json={"action": "pin", "article": "plain/wind", "target": "draft/wind"},
                              headers=AUTH)
        assert refused.status_code == 422
        assert refused.json()["error"] == f"not pinned: {DRAFT_REASON}, so the pin would never show"
        order = client.post("/overrides", headers=AUTH, json={"action": "order", "article": "plain/wind",
                                                              "targets": [HOSTILE_ID, "draft/wind"]})
        assert order.status_code == 422 and DRAFT_REASON in order.json()["error"]
        assert client.post("/overrides", json={"action": "block", "article": "*", "target": HOSTILE_ID_2},
                           headers=AUTH).status_code == 200
        blocked = client.post("/overrides", json={"action": "pin", "article": "plain/wind", "target": HOSTILE_ID_2},
                              headers=AUTH)
        assert blocked.status_code == 422 and "is blocked on every article" in blocked.json()["error"]
        stored = client.get("/overrides").json()["overrides"]  # nothing refused was stored
        assert [(o["action"], o["article"], o["target"]) for o in stored] == [("block", "*", HOSTILE_ID_2)]
        with Overrides.open(folder) as store:  # stored before the target became a draft, or through the library
            store.pin("plain/wind", "draft/wind")
        listed = client.get("/overrides", params={"article": "plain/wind"}).json()["overrides"]
        assert [(o["action"], o["target"], o.get("never_shown")) for o in listed] == [
            ("block", HOSTILE_ID_2, None), ("pin", "draft/wind", DRAFT_REASON)]
        wrong = client.post("/overrides", json={"action": "unpin", "article": "*", "target": HOSTILE_ID_2},
                            headers=AUTH)
        assert wrong.status_code == 404
        assert wrong.json()["error"] == f"{HOSTILE_ID_2} is blocked on *, not pinned: unblock it instead"
        assert client.post("/overrides", json={"action": "unblock", "article": "*", "target": HOSTILE_ID_2},
                           headers=AUTH).json() == {"removed": {"article": "*", "target": HOSTILE_ID_2}}
        recent = client.get("/articles").json()
        assert recent["order"] == "most recent"
        assert [a["id"] for a in recent["articles"]] == [HOSTILE_ID, HOSTILE_ID_2, "plain/wind", "draft/wind"]


def test_the_cli_refuses_pins_that_never_show_unless_the_policy_links_drafts(folder, tmp_path):
    refused = cli_run("pin", "plain/wind", "draft/wind", "--index", folder)
    assert refused.exit_code == 1
    assert refused.output.strip() == f"Error: not pinned: {DRAFT_REASON}, so the pin would never show"
    assert cli_run("overrides", "--index", folder).stdout == ""
    drafts = tmp_path / "drafts.toml"
    drafts.write_text("[links]\ninclude_drafts = true\n")
    assert cli_run("pin", "plain/wind", "draft/wind", "--index", folder, "--policy", drafts).exit_code == 0
    related = cli_run("related", "plain/wind", "--index", folder, "--policy", drafts, "--json")
    assert json.loads(related.stdout)["related"][0]["id"] == "draft/wind"  # and it does show there
    assert load_policy(drafts).links.include_drafts
    # an override whose target has left the index can still be removed by its id
    with Overrides.open(folder) as store:
        store.block("plain/wind", "gone/article")
    assert cli_run("unblock", "plain/wind", "gone/article", "--index", folder).exit_code == 0
    assert "no article 'gone/other'" in cli_run("unblock", "plain/wind", "gone/other", "--index", folder).output



def test_a_pin_to_a_target_the_policys_targets_leave_out_is_refused(index_copy, tmp_path):
    """text/marathon is a plain-text file without a URL, blue-sea-power... a curated stub: the default [links]
    targets never link them, so neither would a pin; with every target allowed the same pins are taken."""
    for target, kind in (("text/marathon", "no-url"), ("blue-sea-power.example.net/records/offshore-week", "stubs")):
        refused = cli_run("pin", "weekend-sourdough", target, "--index", index_copy)
        assert refused.exit_code == 1
        assert f"{target} is a link target of the kind '{kind}', which the policy's [links] targets" in refused.output
    every = tmp_path / "every.toml"
    every.write_text('[links]\ntargets = ["site", "other-domains", "no-url", "stubs"]\n')
    assert cli_run("pin", "weekend-sourdough", "text/marathon", "--index", index_copy, "--policy", every).exit_code == 0
