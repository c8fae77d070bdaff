"""The editors' page in a real headless Chromium (system package, driven by Playwright): search an article, pin
and block a link, reload and see them kept, and find the same overrides through the CLI."""

import shutil
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.serve.app import create_app

TOKEN = "editor-secret"


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install '.[test]'")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine: scripts/install-test-tools installs it (needs root apt-get)")


@pytest.fixture
def server(hashing_index, tmp_path, lexical_policy):
    import uvicorn

    from recommender.rank.policy import load_policy

    folder = tmp_path / "idx"
    shutil.copytree(hashing_index, folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the served policy: the fixture corpus ranked by words (conftest.lexical_policy), as `serve --policy` does
    app = create_app(folder, editor=True, token=TOKEN, policy=load_policy(lexical_policy))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    yield folder, f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


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
