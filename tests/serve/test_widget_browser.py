"""The widget in a real headless Chromium: a page served by another server (another origin on loopback) includes
/widget.js from `recommender serve`, which renders the page's related links when the policy lets that origin
read them (`[serve] cors_origins`), and nothing (and no error) for an unknown page or an origin not allowed."""

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from recommender.rank.policy import policy_from_dict
from recommender.serve.app import create_app

from conftest import LEXICAL_POLICY
from livehttp import CHROMIUM, NO_CHROMIUM, free_port, live_server

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install '.[test]'")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

# an article whose links (ranked by words) include one without a URL, and one whose URL says "HTTP://"
ARTICLE_URL = "https://www.energy-desk.example.com/2024/05/02/grid-batteries-desert-town/?utm_source=feed"
PAGE = """<!doctype html><html><head><title>site</title>
<script src="{api}/widget.js" data-target="#related" data-k="5" {extra} defer></script></head>
<body><h1>An article</h1><div id="related"></div></body></html>"""


@pytest.fixture
def sites(index_copy, tmp_path):
    """The API server and a site server on another port; the policy allows the site as http://127.0.0.1:PORT
    only, so the same pages loaded as http://localhost:PORT come from an origin it does not allow."""
    import tomllib

    site_port = free_port()
    policy = policy_from_dict({**tomllib.loads(LEXICAL_POLICY),
                               "serve": {"cors_origins": [f"http://127.0.0.1:{site_port}"]}})
    with live_server(create_app(index_copy, policy=policy)) as api:
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "known.html").write_text(PAGE.format(api=api, extra=f'data-url="{ARTICLE_URL}"'))
        (tmp_path / "site" / "unknown.html").write_text(PAGE.format(api=api, extra=""))
        handler = partial(QuietHandler, directory=str(tmp_path / "site"))
        site = ThreadingHTTPServer(("127.0.0.1", site_port), handler)
        thread = threading.Thread(target=site.serve_forever, daemon=True)
        thread.start()
        yield api, site_port
        site.shutdown()
        thread.join(5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def widget_result(browser, url):
    """Load the page; wait until the widget is done; return its links (href, text), the nav's label, and the
    page's uncaught errors."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("script[data-state]", state="attached")
    links = page.eval_on_selector_all("#related nav ul li a", "as => as.map(a => [a.href, a.textContent])")
    label = page.eval_on_selector_all("#related nav", "ns => ns.map(n => [n.getAttribute('aria-label'), "
                                      "n.querySelector('h2').textContent])")
    page.close()
    return links, label, errors


def browser_form(url):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def test_the_widget_shows_the_pages_links_to_allowed_origins_only(sites):
    api, site_port = sites
    answer = httpx.get(f"{api}/related", params={"url": ARTICLE_URL, "k": 5}).json()["related"]
    followable = [(r["url"], r["title"]) for r in answer if r["url"]]
    assert any(r["url"] is None for r in answer) and len(followable) >= 2  # the case the widget must handle
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        links, label, errors = widget_result(browser, f"http://127.0.0.1:{site_port}/known.html")
        # in the API's order, no link without a URL; hrefs in the browser's form (lower-case scheme and host)
        assert links == [[browser_form(u), t] for u, t in followable]
        assert label == [["Related articles", "Related articles"]]
        assert errors == []
        # a page the index does not know (looked up by its own address): nothing rendered, nothing thrown
        assert widget_result(browser, f"http://127.0.0.1:{site_port}/unknown.html") == ([], [], [])
        # the same page from an origin the policy does not name: the browser refuses the answer
        assert widget_result(browser, f"http://localhost:{site_port}/known.html") == ([], [], [])
        browser.close()
