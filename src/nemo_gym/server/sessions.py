"""Per-rollout sessions: ``request.session["session_id"]`` on every request.

The agent gives each rollout one session id and sends it to the resources and model servers in
the ``X-Gym-Session`` header, so per-rollout state (``seed_session`` -> tools -> ``verify``) is
keyed the same way everywhere. Clients that carry cookies instead (NeMo Gym-style agents, test
clients) get a ``gym_session`` cookie on their first request and are recognised by it after.

This is a pure ASGI middleware rather than Starlette's signed-cookie ``SessionMiddleware``: it
runs on every request of every rollout, and the session holds only an id, nothing to sign.
"""

from __future__ import annotations

import uuid
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_HEADER = "x-gym-session"
SESSION_COOKIE = "gym_session"
SESSION_ID_KEY = "session_id"


def _from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    cookie_header = None
    for name, value in headers:
        if name == b"x-gym-session":
            return value.decode("latin-1")
        if name == b"cookie":
            cookie_header = value.decode("latin-1")
    if cookie_header and SESSION_COOKIE in cookie_header:
        jar: SimpleCookie = SimpleCookie()
        jar.load(cookie_header)
        morsel = jar.get(SESSION_COOKIE)
        if morsel is not None:
            return morsel.value
    return None


class _NewSession(dict[str, str]):
    """A session for a request that brought none: the id is made when first read."""

    issued = False

    def __missing__(self, key: str) -> str:
        if key != SESSION_ID_KEY:
            raise KeyError(key)
        self[key] = value = uuid.uuid4().hex
        self.issued = True
        return value

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self[key] if key == SESSION_ID_KEY else super().get(key, default)


class SessionIdMiddleware:
    """Put ``{"session_id": ...}`` in ``scope["session"]``.

    A request without a session gets an id (and a cookie carrying it) only if the route reads
    it, so routes that do not use sessions cost no cookie.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id = _from_headers(scope["headers"])
        if session_id is not None:
            scope["session"] = {SESSION_ID_KEY: session_id}
            await self.app(scope, receive, send)
            return
        session = scope["session"] = _NewSession()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.issued:
                cookie = (
                    f"{SESSION_COOKIE}={session[SESSION_ID_KEY]}; Path=/; HttpOnly; SameSite=lax"
                )
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
