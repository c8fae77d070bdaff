"""Security headers on every response of `recommender serve`: the editors' page runs only the scripts and styles
the server itself serves (no inline script, no other origin), is never framed, and no response is sniffed into
another type. A route that sets one of these headers itself keeps its own value."""

from __future__ import annotations

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
}


class SecurityHeaders:
    """ASGI middleware adding HEADERS to each HTTP response that does not set them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in HEADERS.items() if name not in present]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def internal_error(request, exc):
    """The 500 of an error no route handled. Starlette's outermost middleware (ServerErrorMiddleware) makes it, outside
    SecurityHeaders, so it carries the headers itself; the error is still logged and raised by Starlette."""
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("Internal Server Error", status_code=500,
                             headers={name.decode(): value.decode() for name, value in HEADERS.items()})
