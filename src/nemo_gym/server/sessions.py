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


class SessionIdMiddleware:
    """Put ``{"session_id": ...}`` in ``scope["session"]``; issue a cookie for new sessions."""

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
        session_id = uuid.uuid4().hex
        scope["session"] = {SESSION_ID_KEY: session_id}
        cookie = f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=lax".encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
