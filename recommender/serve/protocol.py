"""What every endpoint of `recommender serve` shares: the error a request gets, its parameters, its JSON body, and
the editors' token that writes need."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from ..rank.policy import MAX_K  # noqa: F401 - the API's largest k is the policy's (app.py reads it here)
from .limits import Refused, parse_json, read_body

TOKEN_ENV = "RECOMMENDER_TOKEN"


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


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


async def json_body(request: Request) -> dict:
    """The request's JSON object, within the limits (serve/limits.py: body size, nesting depth)."""
    try:
        body = parse_json(await read_body(request))
    except Refused as exc:
        raise ApiError(exc.status, exc.message) from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    return body


def check_token(request: Request) -> None:
    expected = request.app.state.token
    if not expected:
        raise ApiError(403, f"this server is read-only: start it with --token or ${TOKEN_ENV} to allow writes")
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):  # in constant time
        raise ApiError(401, "writes need the editors' token (Authorization: Bearer TOKEN)")


API_PARAMS = ("k", "explain", "no_overrides")  # what /related/{id} reads from the query string


def article_ref(request: Request) -> str:
    """The id of /related/{id}: the path, and, since ids keep a URL's own query (`youtube.com/watch?v=abc`), the
    query's parameters other than the API's own, in the order given (`%3F` for `?` works too)."""
    return id_with_query(request.path_params["id"], request.url.query)


def id_with_query(ref: str, query: str) -> str:
    """`ref` with the query's parameters other than the API's own (article_ref, for a path and a raw query)."""
    from urllib.parse import unquote

    extra = [part for part in query.split("&") if part and unquote(part.split("=", 1)[0]) not in API_PARAMS]
    return f"{ref}?{unquote('&'.join(extra))}" if extra else ref
