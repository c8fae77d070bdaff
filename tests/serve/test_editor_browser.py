"""The editors' page in a real headless Chromium (system package, driven by Playwright): search an article, pin
and block a link, reload and see them kept, and find the same overrides through the CLI; hostile ids, titles and
URLs show as text and run nothing; pins without a score or that can never show do not break the page."""

import shutil

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.rank.overrides import Overrides
from recommender.rank.policy import load_policy
from recommender.serve.app import create_app

from conftest import LEXICAL_POLICY
from serve_helpers import HOSTILE_ID, HOSTILE_ID_2, HOSTILE_TITLE, HOSTILE_URL, hostile_index, live_server  # noqa: F401
from livehttp import CHROMIUM, NO_CHROMIUM

TOKEN = "editor-secret"
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install '.[test]'")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


@pytest.fixture
def server(hashing_index, tmp_path, lexical_policy, live_server):
    folder = tmp_path / "idx"
    shutil.copytree(hashing_index, folder)
    # the served policy: the fixture corpus ranked by words (conftest.lexical_policy), as `serve --policy` does
    app = create_app(folder, editor=True, token=TOKEN, policy=load_policy(lexical_policy))
    yield folder, live_server(app)


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


def open_page(p, base: str, path: str = "/"):
    """A page of the editors' site that records dialogs and script errors (what an injected script would cause)."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = browser.new_page()
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return browser, page


def hover_everything(page, selector: str) -> None:
    items = page.locator(selector)
    for i in range(items.count()):
        items.nth(i).hover()


INJECTED_TITLE = '<img src=x onerror="window.__xss=5"><script>window.__xss=6</script>'
JAVASCRIPT_URL = "javascript:window.__xss=7"


def test_hostile_ids_titles_and_urls_show_as_text_and_run_nothing(hostile_index, tmp_path, lexical_policy,
                                                                   live_server):
    folder = tmp_path / "idx"
    shutil.copytree(hostile_index, folder)
    with Overrides.open(folder) as store:  # both other published articles show as links of the first (pins)
        store.pin(HOSTILE_ID, HOSTILE_ID_2)
        store.pin(HOSTILE_ID, "plain/wind")
    base = live_server(create_app(folder, editor=True, token=TOKEN, policy=load_policy(lexical_policy)))

    def tamper(route):  # what a store holding markup in titles and a javascript: URL would answer
        response = route.fetch()
        data = response.json()
        for link in data["related"]:
            link["title"] = INJECTED_TITLE
            if link["id"] == "plain/wind":
                link["url"] = JAVASCRIPT_URL
        route.fulfill(response=response, json=data)

    with playwright.sync_playwright() as p:
        browser, page = open_page(p, base)
        page.route("**/related/**", tamper)
        response = page.goto(base + "/")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        page.wait_for_selector("#results li[data-id]")  # it opens on the most recent articles, no search needed
        assert page.locator("#results-heading").inner_text() == "Most recent articles"
        listed = page.locator("#results li[data-id]")
        assert [listed.nth(i).get_attribute("data-id") for i in range(3)] == [HOSTILE_ID, HOSTILE_ID_2, "plain/wind"]
        assert HOSTILE_TITLE in page.locator("#results").inner_text()  # shown as text, quotes and all
        hover_everything(page, "#results li")
        listed.nth(0).click()
        page.wait_for_selector("#links tr")
        assert page.locator("#title").inner_text() == f"Wind farms offshore ({HOSTILE_ID})"
        rows = page.locator("#links tr")
        assert [rows.nth(i).get_attribute("data-id") for i in range(2)] == [HOSTILE_ID_2, "plain/wind"]
        assert all(INJECTED_TITLE in rows.nth(i).inner_text() for i in range(2))
        assert JAVASCRIPT_URL in rows.nth(1).inner_text() and rows.nth(1).locator("a").count() == 0  # text only
        hover_everything(page, "#links tr td")
        page.locator("#results li[data-id]").nth(1).click()  # the article titled with an event handler
        page.wait_for_selector(f"#links tr[data-id='{HOSTILE_ID}']")
        link = page.locator(f"#links tr[data-id='{HOSTILE_ID}'] a")
        assert link.get_attribute("href") == HOSTILE_URL.replace('"', "%22")  # an https URL stays one link
        hover_everything(page, "#links tr td")
        hrefs = page.locator("a").evaluate_all("links => links.map((a) => a.getAttribute('href'))")
        assert hrefs and all(h.startswith("https://") for h in hrefs)
        # the Content-Security-Policy is in force: even a script element added to the page does not run
        assert page.evaluate("""() => { const s = document.createElement('script');
            s.textContent = 'window.__inline = 1'; document.body.append(s); return window.__inline; }""") is None
        assert page.evaluate("window.__xss") is None
        assert page.dialogs == [] and page.errors == []
        browser.close()


def test_pins_without_a_score_or_that_never_show_leave_the_page_working(hashing_index, tmp_path, live_server):
    folder = tmp_path / "idx"
    shutil.copytree(hashing_index, folder)
    policy = tmp_path / "k2.toml"
    # one candidate from each score, so most articles are not candidates; LEXICAL_POLICY's [links] section is last
    policy.write_text(LEXICAL_POLICY.replace("[ranking]\n", "[ranking]\ncandidates = 1\n") + "k = 2\n")
    far = "power-notes.example.org/wind-and-storage"  # not among text/marathon's candidates: no score
    with Overrides.open(folder) as store:  # stored through the library, which refuses none of them
        store.pin("text/marathon", far)  # outside the top 2: the API gives "score": null
        store.pin("text/marathon", "gone/article")  # not in the index (removed since it was pinned)
        store.block("*", "knife-skills")
        store.pin("text/marathon", "knife-skills")  # blocked on every article
    base = live_server(create_app(folder, editor=True, token=TOKEN, policy=load_policy(policy)))
    with playwright.sync_playwright() as p:
        browser, page = open_page(p, base)
        page.goto(base + "/#" + "text%2Fmarathon")
        page.wait_for_selector(f"#links tr[data-id='{far}']")
        cells = page.locator(f"#links tr[data-id='{far}'] td")
        assert cells.nth(1).inner_text() == "– (pinned)"
        page.wait_for_selector("#never-shown li")
        assert page.locator("#never-shown li").all_inner_texts() == [
            "gone/article: gone/article is not in the index unpin",
            "knife-skills: knife-skills is blocked on every article unpin"]
        assert page.locator("#status").inner_text() == "" and page.errors == []
        page.fill("#token", TOKEN)
        page.click("#never-shown li[data-id='gone/article'] button[data-act='unpin']")
        page.wait_for_selector("#never-shown li[data-id='gone/article']", state="detached")
        page.click("#blocked li[data-id='knife-skills'] button[data-act='unblock']")
        page.wait_for_selector("#never", state="hidden")  # unblocked: the knife-skills pin shows again
        page.wait_for_selector("#links tr.pinned[data-id='knife-skills']")
        assert page.locator("#status").inner_text() == "" and page.errors == []
        browser.close()
    listed = CliRunner().invoke(cli, ["overrides", "--index", str(folder)]).stdout.splitlines()
    assert listed == [f"pin    text/marathon  ->  {far}", "pin    text/marathon  ->  knife-skills"]
