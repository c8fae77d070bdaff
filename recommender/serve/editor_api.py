"""The editors' endpoints of `recommender serve --editor`: find articles, read the editors' check, and pin,
reorder, block or unpin links through the same overrides store as `recommender pin/block/unpin`."""

from __future__ import annotations

from starlette.requests import Request

from ..evaluate.check import editors_check
from ..rank.index import UnknownArticle
from ..rank.overrides import EVERY, FILE as OVERRIDES_FILE, Overrides
from ..rank.policy import Policy
from .offload import run_check
from .protocol import ApiError, check_token, json_body, parse_k
from .versions import Served

ACTIONS = ("pin", "block", "unpin", "order")
_checks: dict[str, list] = {}  # editors' check per served version (it ranks every curated article once)


async def articles(request: Request, served: Served) -> dict:
    """Articles whose title or id contains ?q= (case-insensitive), at most ?k= (default 20)."""
    q = (request.query_params.get("q") or "").strip().lower()
    k = parse_k(request.query_params.get("k")) or 20
    found = []
    for info in served.index.store.all():
        if not q or q in info.title.lower() or q in info.id.lower():
            found.append({"id": info.id, "title": info.title, "url": info.url})
            if len(found) >= k:
                break
    return {"version": served.version, "articles": found}


async def check(request: Request, served: Served) -> dict:
    """The editors' check (curated links the system ranks low or does not show, suggestions missing from curated
    lists), ranked as /related ranks (the same function as `recommender check`, the served policy, the overrides
    as they are now). ?id= checks one article; the whole check is kept per version and state of the overrides."""
    k = parse_k(request.query_params.get("k"))
    only = request.query_params.get("id")
    policy = request.app.state.policy
    if only:
        items = await run_check(editors_check, served.index, k=k, ids=[resolve(served, only, "id")], policy=policy)
    else:  # on the check's own thread: the event loop and the ranking pool keep answering meanwhile
        items = await run_check(whole_check, served, k, f"{served.version}:{k}:{overrides_state(served)}", policy)
    return {"version": served.version, "k": items[0].k if items else k or (request.app.state.policy or Policy()).links.k, "items": [
        {"id": item.id, "title": item.title, "agreement": round(item.agreement, 3),
         "agreed": [e.to_dict() for e in item.agreed], "low": [e.to_dict() for e in item.low],
         "missing": [e.to_dict() for e in item.missing]} for item in items]}


def whole_check(served: Served, k: int | None, key: str, policy) -> list:
    """The check over every curated article, kept per key (one check thread: a second request for the same key
    waits for the first and reads its result)."""
    if key not in _checks:
        _checks.clear()
        _checks[key] = editors_check(served.index, k=k, policy=policy)
    return _checks[key]


def overrides_state(served: Served) -> tuple:
    """Changes whenever the overrides store is written (by this page or by the CLI)."""
    try:
        st = (served.index.folder / OVERRIDES_FILE).stat()
    except FileNotFoundError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


async def list_overrides(request: Request, served: Served) -> dict:
    with Overrides.open(served.index.folder) as store:
        items = store.all()
    article = request.query_params.get("article")
    if article:
        items = [o for o in items if o.article in (article, EVERY)]
    return {"overrides": [o.to_dict() for o in items]}


def resolve(served: Served, ref, what: str, star: bool = False) -> str:
    if not isinstance(ref, str) or not ref:
        raise ApiError(422, f"the body needs a \"{what}\" id")
    if star and ref == EVERY:
        return ref
    try:
        return served.index.get(ref).id
    except UnknownArticle as exc:
        raise ApiError(404, str(exc.args[0] if exc.args else exc)) from None


async def write_override(request: Request, served: Served) -> dict:
    """Body {"action": "pin"|"block"|"unpin", "article", "target", "note"?} or
    {"action": "order", "article", "targets": [ids]} (re-pins the article's links in that order)."""
    check_token(request)
    body = await json_body(request)
    action = body.get("action")
    if action not in ACTIONS:
        raise ApiError(422, f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    article = resolve(served, body.get("article"), "article", star=True)
    note = body.get("note") if isinstance(body.get("note"), str) else None
    with Overrides.open(served.index.folder) as store:
        if action == "order":
            targets = body.get("targets")
            if not isinstance(targets, list):
                raise ApiError(422, "action order needs \"targets\": a list of ids")
            ids = [resolve(served, t, "targets") for t in targets]
            notes = {o.target: o.note for o in store.all() if o.article == article and o.action == "pin"}
            for target in notes:
                store.unpin(article, target)
            done = [store.pin(article, t, notes.get(t)).to_dict() for t in ids]
            return {"pinned": done}
        target = resolve(served, body.get("target"), "target")
        if action == "unpin":
            if not store.unpin(article, target):
                raise ApiError(404, f"no pin or block of {target} on {article}")
            return {"removed": {"article": article, "target": target}}
        try:
            return getattr(store, action)(article, target, note).to_dict()
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None


EDITOR_ROUTES = [("/articles", articles, ["GET"]), ("/check", check, ["GET"]),
                 ("/overrides", list_overrides, ["GET"]), ("/overrides", write_override, ["POST"])]
