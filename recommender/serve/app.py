"""`recommender serve`: an HTTP JSON API over the same library calls as the CLI, following the nightly batch.

The event loop answers what is cheap (stored answers, kept as bytes: serve/answers.py; /info, /health); ranking,
/search and the editors' /check run on threads (serve/offload.py), so no request waits for another's heavy work.
Before each request the server compares the manifest's stat with the one it opened; a new committed version is
opened and verified in full (Index.open) on a thread while the old one answers, then one reference is swapped;
each request leases the version it started with to its end (serve/versions.py), so it sees exactly one version
and never a half-written one. A version that fails its checks is not served: the old one stays, and /health
says why. `serve --workers N` runs N such processes on one port (serve/workers.py)."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..common.errors import InputError
from ..store.manifest import IndexProblem
from .answers import Answering, FastAnswers, related_by_id, related_by_url
from .headers import SecurityHeaders, internal_error
from .offload import run_ranking, tune_interpreter
from .protocol import MAX_K, TOKEN_ENV, ApiError, json_body, parse_k
from .versions import Follower, Served
from .widget import add_widget

log = logging.getLogger("recommender")
EDITOR_DIR = Path(__file__).resolve().parent / "editor"
EDITOR_FILES = {"/": "index.html", "/editor": "index.html", "/editor.js": "editor.js", "/editor.css": "editor.css"}


# --- endpoints (GET /related: serve/answers.py) -------------------------------------------------------

async def search(request: Request, served: Served) -> dict:
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "the body needs a non-empty \"text\" string")
    k = body.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
        raise ApiError(422, f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    k = parse_k(None if k is None else str(k))
    links = await run_ranking(searched, served, text, k, bool(body.get("explain")), request.app.state.policy)
    return {"version": served.version, "query": {"text": text}, "related": [r.to_dict() for r in links]}


def searched(served: Served, text: str, k: int | None, explain: bool, policy) -> list:
    """On the ranking pool: the model is loaded once per version (not by two threads at a time)."""
    with served.lock:
        served.index.data.embedder()
    return served.index.search(text, k, explain=explain, policy=policy)


async def info(request: Request, served: Served) -> dict:
    return {"version": served.version, **served.index.info()}


async def health(request: Request, served: Served) -> dict:
    follower: Follower = request.app.state.follower
    served = await follower.settled()  # a version being opened now: its outcome
    return {"status": "ok" if follower.problem is None else "degraded", "version": served.version,
            "built_at": served.index.data.manifest.built_at, "articles": len(served.index), "swaps": follower.swaps,
            "problem": follower.problem, "pid": os.getpid()}


ROUTES = [("/related/{id:path}", related_by_id, ["GET"]), ("/related", related_by_url, ["GET"]),
          ("/search", search, ["POST"]), ("/info", info, ["GET"]), ("/health", health, ["GET"])]


def endpoint(handler):
    async def run(request: Request):
        follower = request.app.state.follower
        served = follower.acquire()  # one version for the whole request, even on another thread
        try:
            result = await handler(request, served)
            return result if isinstance(result, Response) else JSONResponse(result)
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except (IndexProblem, InputError) as exc:  # e.g. search on an index whose model is not here
            return JSONResponse({"error": str(exc).splitlines()[0]}, status_code=422)
        finally:
            follower.release(served)

    return run


def static_file(path: Path):
    async def send(request: Request):
        return FileResponse(path)

    return send


def create_app(folder: str | Path, *, editor: bool = False, token: str | None = None, policy=None) -> Starlette:
    """The ASGI app serving the index in `folder` (opened now; a broken index raises IndexProblem here), under
    the link policy `policy` (recommender.rank.policy.Policy; None: the defaults), as the batch and the CLI rank."""
    from ..store.compiledtopk import use_compiled
    from .editor_api import EDITOR_ROUTES

    use_compiled()  # a serving process ranks many queries: the lexical heads' top-k compiled (the same numbers)
    answering = Answering(folder, policy)
    follower = Follower(folder, prepare=answering.prepare)
    routes = [Route(path, endpoint(handler), methods=methods) for path, handler, methods in ROUTES]
    if editor:
        routes += [Route(path, endpoint(handler), methods=methods) for path, handler, methods in EDITOR_ROUTES]
        routes += [Route(path, static_file(EDITOR_DIR / name), methods=["GET"]) for path, name in EDITOR_FILES.items()]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        follower.close()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={Exception: internal_error})
    app.add_middleware(FastAnswers)  # kept stored answers, before routing (middleware added later wraps it)
    app.add_middleware(SecurityHeaders)  # on every response, kept answers too
    app.state.follower = follower
    app.state.answering = answering
    app.state.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    app.state.policy = policy
    add_widget(app, policy)  # GET /widget.js, and CORS for the policy's [serve] cors_origins
    return app


def app_from_environment() -> Starlette:
    """The app each worker process of `serve --workers N` makes (uvicorn's factory; serve/workers.py)."""
    from .workers import settings_from_environment

    tune_interpreter()
    return create_app(**settings_from_environment())


def serve(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000, editor: bool = False,
          token: str | None = None, policy=None, workers: int = 1) -> None:
    import uvicorn

    log.info("serving %s on http://%s:%d%s%s", folder, host, port,
             " with the editors' page at /" if editor else "", f" in {workers} processes" if workers > 1 else "")
    if workers > 1:
        from .workers import run_workers

        run_workers(folder, host=host, port=port, editor=editor, token=token, policy=policy, workers=workers)
        return
    from .fastpath import StoredAnswersProtocol

    tune_interpreter()
    uvicorn.run(create_app(folder, editor=editor, token=token, policy=policy), host=host, port=port,
                log_level="warning", http=StoredAnswersProtocol)
