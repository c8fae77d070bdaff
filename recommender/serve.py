"""`recommender serve`: an HTTP JSON API over the same library calls as the CLI, following the nightly batch.

All index work runs on the event loop's thread, one request at a time (the 2-core target machines gain nothing
from parallel scoring, and SQLite connections stay on the thread that opened them). Before each request the
server compares the manifest's stat with the one it opened; a new committed version is opened and verified in
full (Index.open) before one reference is swapped, so a request sees exactly one version and never a
half-written one. A version that fails its checks is not served: the old one stays, and /health says why."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from .index import Index, UnknownArticle
from .manifest import MANIFEST_NAME, IndexProblem

log = logging.getLogger("recommender")
TOKEN_ENV = "RECOMMENDER_TOKEN"
EDITOR_PAGE = Path(__file__).resolve().parent / "editor" / "index.html"
MAX_K = 1000


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Served:
    index: Index
    version: str  # sha256 prefix of the manifest that was opened
    stat: tuple


def manifest_stat(folder: Path) -> tuple | None:
    try:
        st = (folder / MANIFEST_NAME).stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def open_version(folder: Path) -> Served:
    """Open and verify the committed version of an index folder (raises IndexProblem)."""
    stat = manifest_stat(folder)
    index = Index.open(folder)
    version = hashlib.sha256(index.manifest.to_json().encode()).hexdigest()[:12]
    return Served(index, version, stat)


class Follower:
    """Holds the served index version and switches to a newly committed one between requests."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.current: Served | None = None  # opened on the serving thread (SQLite connections stay on theirs)
        open_version(self.folder).index.close()  # a broken index fails at start, not at the first request
        self.problem: str | None = None  # why the last new version was refused
        self.refused_stat: tuple | None = None
        self.swaps = 0

    def refresh(self) -> Served:
        if self.current is None:
            self.current = open_version(self.folder)
        stat = manifest_stat(self.folder)
        if stat is None or stat == self.current.stat or stat == self.refused_stat:
            return self.current
        try:
            fresh = open_version(self.folder)
        except IndexProblem as exc:
            self.problem, self.refused_stat = str(exc), stat
            log.warning("new index version refused, still serving %s: %s", self.current.version, exc)
            return self.current
        old, self.current = self.current, fresh  # the swap: one reference
        self.problem, self.refused_stat = None, None
        self.swaps += 1
        old.index.close()
        log.info("now serving index version %s (was %s)", fresh.version, old.version)
        return fresh

    def close(self) -> None:
        if self.current is not None:
            self.current.index.close()


# --- request helpers --------------------------------------------------------------------------------------

def parse_k(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        k = int(value)
    except ValueError:
        raise ApiError(422, f"k must be a whole number from 1 to {MAX_K}, got {value!r}") from None
    if not 1 <= k <= MAX_K:
        raise ApiError(422, f"k must be a whole number from 1 to {MAX_K}, got {k}")
    return k


def parse_flag(value: str | None, name: str) -> bool:
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise ApiError(422, f"{name} must be true or false, got {value!r}")


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
    links = index.related(info.id, k, explain=explain, overrides=overrides)
    return {"version": served.version, "query": {"id": info.id, "title": info.title, "url": info.url},
            "related": [r.to_dict() for r in links]}


async def json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(422, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    return body


def check_token(request: Request) -> None:
    expected = request.app.state.token
    if not expected:
        raise ApiError(403, f"this server is read-only: start it with --token or ${TOKEN_ENV} to allow writes")
    given = request.headers.get("authorization", "")
    if given != f"Bearer {expected}":
        raise ApiError(401, "writes need the editors' token (Authorization: Bearer TOKEN)")


# --- endpoints -------------------------------------------------------------------------------------------

async def related_by_id(request: Request, served: Served) -> dict:
    return article_payload(served, request.path_params["id"], request)


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
    links = served.index.search(text, k, explain=bool(body.get("explain")))
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


def create_app(folder: str | Path, *, editor: bool = False, token: str | None = None) -> Starlette:
    """The ASGI app serving the index in `folder` (opened now; a broken index raises IndexProblem here)."""
    from .editor_api import EDITOR_ROUTES

    follower = Follower(folder)
    routes = [Route(path, endpoint(handler), methods=methods) for path, handler, methods in ROUTES]
    if editor:
        routes += [Route(path, endpoint(handler), methods=methods) for path, handler, methods in EDITOR_ROUTES]
        routes.append(Route("/", lambda request: FileResponse(EDITOR_PAGE), methods=["GET"]))
        routes.append(Route("/editor", lambda request: FileResponse(EDITOR_PAGE), methods=["GET"]))
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        follower.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.follower = follower
    app.state.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    return app


def serve(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000, editor: bool = False,
          token: str | None = None) -> None:
    import uvicorn

    app = create_app(folder, editor=editor, token=token)
    log.info("serving %s on http://%s:%d%s", folder, host, port,
             " with the editors' page at /" if editor else "")
    uvicorn.run(app, host=host, port=port, log_level="warning")
