"""The request body size limit every server enforces (413 above it), before any parsing.

Without a limit one 300 MB POST took a resources server from 294 MB to 2.3 GB. The limit is
checked against ``Content-Length`` before a byte is read; a body without one is read up to the
limit before the server sees it. The default (64 MiB) sits well above the largest realistic
row: a long multi-turn trajectory with every turn's token ids and log-probs. Installed by
``base.create_app``; a server's ``max_request_body_mb`` setting changes it.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_MB = 64.0


class BodyLimitMiddleware:
    """Answer 413 to a request whose body exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send, int(declared))
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server enforces Content-Length itself
            return
        # No Content-Length (chunked): read up to the limit first, then hand the body on.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._reject(send, seen)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, size: int) -> None:
        body: dict[str, Any] = {
            "error": {
                "type": "RequestTooLarge",
                "message": f"request body of {size} bytes or more is over this server's limit "
                f"of {self.max_bytes} bytes (setting max_request_body_mb)",
            }
        }
        data = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
