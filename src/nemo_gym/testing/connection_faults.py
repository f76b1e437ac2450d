"""Faults below the HTTP status for the fake OpenAI endpoint: calls never answered, bodies cut.

``fake_openai`` answers scripted *statuses* (429, 500); this module adds what a real upstream
also does to a long run: it accepts a call and never answers (a hung upstream), or sends the
headers and part of the body and then closes the connection. Both are counted per request
(``hang_next`` / ``cut_next``: the next N model calls, ``-1``: every call until changed), so
that a test knows exactly how many calls were hit.

Set them at start (``--hang-first N``, ``--cut-first N``), on the :class:`ConnectionFaults` of
an in-process fake, or while the fake runs with ``POST /fake/faults`` (``{"hang_next": 0,
"cut_next": 0, "release": true}``); ``GET /fake/stats`` reports ``hung`` and ``cut``. Held calls
are let go on ``release`` or when the fake shuts down, so that nothing waits on them.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConnectionFaults:
    """How many of the next model calls hang or get a cut body, and how many did."""

    def __init__(self, hang_next: int = 0, cut_next: int = 0) -> None:
        self.hang_next = hang_next
        self.cut_next = cut_next
        self.hung = 0  # calls held without an answer
        self.cut = 0  # calls whose body was cut
        self._release = asyncio.Event()

    @staticmethod
    def _take(count: int) -> tuple[bool, int]:
        """Whether this call is hit, and the count left (``-1`` stays ``-1``)."""
        if count == 0:
            return False, 0
        return True, count if count < 0 else count - 1

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Apply the faults to the model routes (``/fake/*`` is never hit)."""
        if request.path.startswith("/fake/"):
            return await handler(request)
        hang, self.hang_next = self._take(self.hang_next)
        if hang:
            self.hung += 1
            await self._release.wait()  # the caller has long given up: answer nothing useful
            return web.json_response({"error": {"message": "released"}}, status=503)
        cut, self.cut_next = self._take(self.cut_next)
        response = await handler(request)
        if not cut or not isinstance(response, web.Response) or response.body is None:
            return response
        self.cut += 1
        return await _cut_body(request, response)

    def release(self) -> None:
        """Let every held call go (they answer 503 to callers that are usually gone)."""
        self._release.set()
        self._release = asyncio.Event()

    async def control(self, request: web.Request) -> web.Response:
        """``POST /fake/faults``: set ``hang_next`` / ``cut_next``; ``release`` held calls."""
        body: dict[str, Any] = orjson.loads(await request.read() or b"{}")
        self.hang_next = int(body.get("hang_next", self.hang_next))
        self.cut_next = int(body.get("cut_next", self.cut_next))
        if body.get("release"):
            self.release()
        return web.json_response(self.stats())

    def stats(self) -> dict[str, int]:
        return {"hung": self.hung, "cut": self.cut}

    def install(self, app: web.Application) -> None:
        """Add the middleware, ``POST /fake/faults``, and the release at shutdown to ``app``."""
        app.middlewares.append(self.middleware)
        app.router.add_post("/fake/faults", self.control)

        async def release_all(_app: web.Application) -> None:
            self.release()

        app.on_shutdown.append(release_all)


async def _cut_body(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Send ``response``'s status, headers and the first half of its body, then close."""
    body = bytes(response.body)  # type: ignore[arg-type]  # a Response built from bytes
    stream = web.StreamResponse(status=response.status)
    stream.content_type = response.content_type
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    assert request.transport is not None
    request.transport.close()  # sends what is buffered, then FIN: the body ends short
    return stream


def add_options(parser: argparse.ArgumentParser) -> None:
    """The command-line options of these faults."""
    parser.add_argument(
        "--hang-first", type=int, default=0, help="never answer the first N model calls"
    )
    parser.add_argument(
        "--cut-first",
        type=int,
        default=0,
        help="cut the body of the first N model answers (headers and half the body, then close)",
    )


def from_options(args: argparse.Namespace) -> ConnectionFaults:
    return ConnectionFaults(hang_next=args.hang_first, cut_next=args.cut_first)
