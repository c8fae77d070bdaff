"""The widget a site's pages include to show their related links: `recommender serve` hands out
`widget/widget.js` at GET /widget.js, and lets the pages of the origins in the policy's `[serve] cors_origins`
read GET /related from the browser (CORS). Any other origin gets no CORS header, so its browser keeps the answer
from the page. Only the read-only /related endpoints are opened to other origins, and only for GET."""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

WIDGET_JS = Path(__file__).resolve().parent / "widget" / "widget.js"
CORS_PATHS = ("/related",)  # and below it: /related/{id}
PREFLIGHT_MAX_AGE = 86400  # seconds a browser may keep a preflight's answer


async def widget_js(request: Request) -> FileResponse:
    return FileResponse(WIDGET_JS, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})


class LinksCors:
    """CORS on the /related endpoints only, for the configured origins, GET only, without credentials."""

    def __init__(self, app, origins: tuple[str, ...]):
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=["GET"],
                                   max_age=PREFLIGHT_MAX_AGE)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and any(path == p or path.startswith(p + "/") for p in CORS_PATHS):
            await self.cors(scope, receive, functools.partial(vary_once, send))
        else:
            await self.app(scope, receive, send)


async def vary_once(send, message) -> None:
    """Starlette's CORS adds `Origin` to a Vary that already names it (the answers' own, serve/caching.py)."""
    if message["type"] == "http.response.start":
        headers = MutableHeaders(scope=message)
        if "vary" in headers:
            headers["vary"] = ", ".join(dict.fromkeys(v.strip() for v in headers["vary"].split(",")))
    await send(message)


def add_widget(app, policy) -> None:
    """Serve /widget.js on `app`, and CORS for the policy's `[serve] cors_origins` (none: no CORS at all)."""
    app.router.routes.append(Route("/widget.js", widget_js, methods=["GET"]))
    origins = policy.serve.cors_origins if policy is not None else ()
    if origins:
        app.add_middleware(LinksCors, origins=tuple(origins))
