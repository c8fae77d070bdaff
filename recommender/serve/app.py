"""`recommender serve`: an HTTP JSON API over the same library calls as the CLI, following the nightly batch.

All index work runs on the event loop's thread, one request at a time (the 2-core target machines gain nothing
from parallel scoring, and SQLite connections stay on the thread that opened them). Before each request the
server compares the manifest's stat with the one it opened; a new committed version is opened and verified in
full (Index.open) before one reference is swapped, so a request sees exactly one version and never a
half-written one. A version that fails its checks is not served: the old one stays, and /health says why."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from ..rank.index import UnknownArticle
from ..store.manifest import IndexProblem
from .headers import SecurityHeaders
from .protocol import MAX_K, TOKEN_ENV, ApiError, article_ref, json_body, parse_flag, parse_k
from .versions import Follower, Served
from .widget import add_widget

log = logging.getLogger("recommender")
EDITOR_DIR = Path(__file__).resolve().parent / "editor"
EDITOR_FILES = {"/": "index.html", "/editor": "index.html", "/editor.js": "editor.js", "/editor.css": "editor.css"}



def article_payload(served: Served, ref: str, request: Request) -> dict:
    index = served.index
    try:
        info = index.get(ref)
    except UnknownArticle as exc:
        raise ApiError(404, str(exc.args[0] if exc.args else exc)) from None
    q = request.query_params
    k = parse_k(q.get("k"))
    explain = parse_flag(q.get("explain"), "explain")
    overrides = not parse_flag(q.get("no_overrides"), "no_overrides")
    links = index.related(info.id, k, explain=explain, overrides=overrides, policy=request.app.state.policy)
    return {"version": served.version, "query": {"id": info.id, "title": info.title, "url": info.url},
            "related": [r.to_dict() for r in links]}


# --- endpoints -------------------------------------------------------------------------------------------

async def related_by_id(request: Request, served: Served) -> dict:
    return article_payload(served, article_ref(request), request)


async def related_by_url(request: Request, served: Served) -> dict:
    url = request.query_params.get("url")
    if not url:
        raise ApiError(422, "give ?url= (or use /related/{id})")
    return article_payload(served, url, request)


async def search(request: Request, served: Served) -> dict:
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "the body needs a non-empty \"text\" string")
    k = body.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
        raise ApiError(422, f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    k = parse_k(None if k is None else str(k))
    links = served.index.search(text, k, explain=bool(body.get("explain")), policy=request.app.state.policy)
    return {"version": served.version, "query": {"text": text}, "related": [r.to_dict() for r in links]}


async def info(request: Request, served: Served) -> dict:
    return {"version": served.version, **served.index.info()}


async def health(request: Request, served: Served) -> dict:
    follower: Follower = request.app.state.follower
    return {"status": "ok" if follower.problem is None else "degraded", "version": served.version,
            "built_at": served.index.manifest.built_at, "articles": len(served.index), "swaps": follower.swaps,
            "problem": follower.problem}


ROUTES = [("/related/{id:path}", related_by_id, ["GET"]), ("/related", related_by_url, ["GET"]),
          ("/search", search, ["POST"]), ("/info", info, ["GET"]), ("/health", health, ["GET"])]


def endpoint(handler):
    async def run(request: Request):
        served = request.app.state.follower.refresh()
        try:
            return JSONResponse(await handler(request, served))
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except (IndexProblem, ValueError) as exc:  # e.g. search on an index whose model is not here
            return JSONResponse({"error": str(exc).splitlines()[0]}, status_code=422)

    return run


def static_file(path: Path):
    async def send(request: Request):
        return FileResponse(path)

    return send


def create_app(folder: str | Path, *, editor: bool = False, token: str | None = None, policy=None) -> Starlette:
    """The ASGI app serving the index in `folder` (opened now; a broken index raises IndexProblem here), under
    the link policy `policy` (recommender.rank.policy.Policy; None: the defaults), as the batch and the CLI rank."""
    from .editor_api import EDITOR_ROUTES

    follower = Follower(folder)
    routes = [Route(path, endpoint(handler), methods=methods) for path, handler, methods in ROUTES]
    if editor:
        routes += [Route(path, endpoint(handler), methods=methods) for path, handler, methods in EDITOR_ROUTES]
        routes += [Route(path, static_file(EDITOR_DIR / name), methods=["GET"]) for path, name in EDITOR_FILES.items()]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        follower.close()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
    app.state.follower = follower
    app.state.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    app.state.policy = policy
    add_widget(app, policy)  # GET /widget.js, and CORS for the policy's [serve] cors_origins
    return app


def serve(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000, editor: bool = False,
          token: str | None = None, policy=None) -> None:
    import uvicorn

    app = create_app(folder, editor=editor, token=token, policy=policy)
    log.info("serving %s on http://%s:%d%s", folder, host, port,
             " with the editors' page at /" if editor else "")
    uvicorn.run(app, host=host, port=port, log_level="warning")
