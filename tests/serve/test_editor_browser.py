"""The editors' page in a real headless Chromium (system package, driven by Playwright): search an article, pin
and block a link, reload and see them kept, and find the same overrides through the CLI."""

import shutil

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.serve.app import create_app

from livehttp import CHROMIUM, NO_CHROMIUM, live_server

TOKEN = "editor-secret"
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install '.[test]'")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


@pytest.fixture
def server(hashing_index, tmp_path, lexical_policy):
    from recommender.rank.policy import load_policy

    folder = tmp_path / "idx"
    shutil.copytree(hashing_index, folder)
    # the served policy: the fixture corpus ranked by words (conftest.lexical_policy), as `serve --policy` does
    app = create_app(folder, editor=True, token=TOKEN, policy=load_policy(lexical_policy))
    with live_server(app) as base:
        yield folder, base


def test_pin_and_block_in_the_browser_persist_and_reach_the_cli(server):
    folder, base = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base + "/")
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        page.fill("#q", "marathon")  # an article with 4 links above the minimum score, ranked by words
        page.click("#results li[data-id='text/marathon']")
        page.wait_for_selector("#links tr")
        rows = page.locator("#links tr")
        first, second = rows.nth(0).get_attribute("data-id"), rows.nth(1).get_attribute("data-id")
        page.click(f"#links tr[data-id='{second}'] button[data-act='pin']")
        page.wait_for_selector(f"#links tr.pinned[data-id='{second}']")
        page.click(f"#links tr[data-id='{first}'] button[data-act='block']")
        page.wait_for_selector(f"#blocked li[data-id='{first}']")
        page.reload()
        page.wait_for_selector(f"#links tr.pinned[data-id='{second}']")
        assert page.locator("#links tr").nth(0).get_attribute("data-id") == second
        assert page.locator(f"#links tr[data-id='{first}']").count() == 0
        assert page.locator(f"#blocked li[data-id='{first}']").count() == 1
        assert "(pinned)" in page.locator(f"#links tr[data-id='{second}']").inner_text()
        browser.close()
    listed = CliRunner().invoke(cli, ["overrides", "--index", str(folder)]).stdout.splitlines()
    assert listed == [f"block  text/marathon  ->  {first}", f"pin    text/marathon  ->  {second}"]
