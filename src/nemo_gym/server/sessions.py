"""Per-rollout sessions: ``request.session["session_id"]`` on every request.

The agent gives each rollout one session id and sends it to the resources and model servers in
the ``X-Gym-Session`` header, so per-rollout state (``seed_session`` -> tools -> ``verify``) is
keyed the same way everywhere. Clients that carry cookies instead (NeMo Gym-style agents, test
clients) are recognised by the ``gym_session`` cookie.

Every response carries the ``gym_session`` cookie of the request's session, as NeMo Gym's
servers do: agents written for NeMo Gym replace their cookies with ``response.cookies`` after
each call, so a response without the cookie would start a new session on the next call. A
request that brought no session gets a new id.

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


def session_cookie(session_id: str) -> bytes:
    """The ``Set-Cookie`` value that carries ``session_id``."""
    return f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=lax".encode("latin-1")


class SessionIdMiddleware:
    """Put ``{"session_id": ...}`` in ``scope["session"]`` and set its cookie on the response.

    The id comes from the ``X-Gym-Session`` header, else the ``gym_session`` cookie, else is new.
    The cookie is appended after any the route set, so a route that copies cookies from other
    servers' responses onto its own (as NeMo Gym's agents do) cannot replace its own session.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id = _from_headers(scope["headers"]) or uuid.uuid4().hex
        scope["session"] = {SESSION_ID_KEY: session_id}
        cookie = session_cookie(session_id)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
