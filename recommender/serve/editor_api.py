"""The editors' endpoints of `recommender serve --editor`: find articles, read the editors' check, and pin,
reorder, block, unpin or unblock links through the same overrides store as `recommender pin/block/unpin/unblock`.
A pin that could never show (its target unpublished under the policy, or blocked) is refused; a stored pin that
no longer can (its target gone or made a draft since) is listed with the reason, for the page to warn."""

from __future__ import annotations

from starlette.requests import Request

from ..common.errors import InputError
from ..evaluate.check import editors_check
from ..rank.results import UnknownArticle
from ..rank.overrides import EVERY, FILE as OVERRIDES_FILE, Overrides, never_shown, pin_refusal
from ..rank.policy import Policy
from .offload import run_check
from .protocol import ApiError, check_token, json_body, parse_k
from .versions import Served

ACTIONS = ("pin", "block", "unpin", "unblock", "order")
_checks: dict[str, list] = {}  # editors' check per served version (it ranks every curated article once)


async def articles(request: Request, served: Served) -> dict:
    """Articles whose title or id contains ?q= (case-insensitive), at most ?k= (default 20); without ?q=, the most
    recently published (undated ones last)."""
    q = (request.query_params.get("q") or "").strip().lower()
    k = parse_k(request.query_params.get("k")) or 20
    infos = served.index.data.store.all()
    if not q:
        infos = sorted(infos, key=lambda i: i.published or "", reverse=True)
    found = []
    for info in infos:
        if not q or q in info.title.lower() or q in info.id.lower():
            found.append({"id": info.id, "title": info.title, "url": info.url, "published": info.published})
            if len(found) >= k:
                break
    return {"version": served.version, "articles": found, "order": "matching" if q else "most recent"}


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
        st = (served.index.data.folder / OVERRIDES_FILE).stat()
    except FileNotFoundError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


async def list_overrides(request: Request, served: Served) -> dict:
    """The overrides (?article=: of one article, with those on every article); a pin that can never show has
    "never_shown": the reason."""
    with Overrides.open(served.index.data.folder) as store:
        every = store.all()
    article = request.query_params.get("article")
    items = [o for o in every if o.article in (article, EVERY)] if article else every
    policy = served_policy(request)
    listed = []
    for item in items:
        entry = item.to_dict()
        problem = never_shown(item, served.index, policy, every)
        if problem:
            entry["never_shown"] = problem
        listed.append(entry)
    return {"overrides": listed}


def served_policy(request: Request) -> Policy:
    return request.app.state.policy or Policy()


def refuse_never_shown(served: Served, request: Request, store: Overrides, article: str, target: str) -> None:
    refusal = pin_refusal(store, served.index, served_policy(request), article, target)
    if refusal:
        raise ApiError(422, refusal)


def resolve(served: Served, ref, what: str, star: bool = False, stored: set[str] = frozenset()) -> str:
    """The id of the article `ref` names; one of the `stored` ids is kept as it is, even if not in the index
    (removing a pin or a block of an article that has left the index)."""
    if not isinstance(ref, str) or not ref:
        raise ApiError(422, f"the body needs a \"{what}\" id")
    if star and ref == EVERY:
        return ref
    try:
        return served.index.data.get(ref).id
    except UnknownArticle as exc:
        if ref in stored:
            return ref
        raise ApiError(404, str(exc.args[0] if exc.args else exc)) from None


async def write_override(request: Request, served: Served) -> dict:
    """Body {"action": "pin"|"block"|"unpin"|"unblock", "article", "target", "note"?} or
    {"action": "order", "article", "targets": [ids]} (re-pins the article's links in that order)."""
    check_token(request)
    body = await json_body(request)
    action = body.get("action")
    if action not in ACTIONS:
        raise ApiError(422, f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    removal = action in ("unpin", "unblock")
    note = body.get("note") if isinstance(body.get("note"), str) else None
    with Overrides.open(served.index.data.folder) as store:
        stored = store.ids() if removal else set()
        article = resolve(served, body.get("article"), "article", star=True, stored=stored)
        if action == "order":
            targets = body.get("targets")
            if not isinstance(targets, list):
                raise ApiError(422, "action order needs \"targets\": a list of ids")
            ids = [resolve(served, t, "targets") for t in targets]
            for target in ids:
                refuse_never_shown(served, request, store, article, target)
            notes = {o.target: o.note for o in store.all() if o.article == article and o.action == "pin"}
            for target in notes:
                store.unpin(article, target)
            done = [store.pin(article, t, notes.get(t)).to_dict() for t in ids]
            return {"pinned": done}
        target = resolve(served, body.get("target"), "target", stored=stored)
        if removal:
            if not getattr(store, action)(article, target):
                raise ApiError(404, store.nothing_removed(action, article, target))
            return {"removed": {"article": article, "target": target}}
        if action == "pin":
            refuse_never_shown(served, request, store, article, target)
        try:
            return getattr(store, action)(article, target, note).to_dict()
        except InputError as exc:
            raise ApiError(422, str(exc)) from None


EDITOR_ROUTES = [("/articles", articles, ["GET"]), ("/check", check, ["GET"]),
                 ("/overrides", list_overrides, ["GET"]), ("/overrides", write_override, ["POST"])]
