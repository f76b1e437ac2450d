"""How the pooled client's calls reach a server: the network (aiohttp) or an app in this process.

:class:`~nemo_gym.server.http_client.HttpClient` decides deadlines and retries; a
:class:`Transport` makes one attempt and returns the status, headers and whole body. Two exist:

- :class:`AiohttpTransport` (the default): the client's pooled aiohttp session, over TCP.
- :class:`AsgiTransport`: calls ASGI apps (a Gym server's FastAPI app) directly, chosen by the
  ``host:port`` of the URL, so that tests of servers and clients need no socket and no uvicorn.

A transport signals failures with the exceptions the client's retry rules know: aiohttp's
``ClientError`` family for connections, ``TimeoutError`` for a deadline.

Neighbours: ``http_client`` (the retry loop on top), ``client`` (``ServerClient``, calls by
instance name), ``base`` (the apps).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote, urlencode, urlsplit

import aiohttp

logger = logging.getLogger(__name__)

#: An ASGI application (``FastAPI`` is one).
AsgiApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


class TransportResponse(NamedTuple):
    """One attempt's answer, read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Makes one HTTP attempt (see the module docstring)."""

    async def send(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        timeouts: aiohttp.ClientTimeout,
    ) -> TransportResponse:
        """Send one request and read the whole answer within ``timeouts``."""
        ...

    async def close(self) -> None:
        """Release what the transport holds (connections)."""
        ...


class AiohttpTransport:
    """Over TCP with an aiohttp session, which ``session()`` returns (the client owns it)."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession]) -> None:
        self._session = session

    async def send(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        timeouts: aiohttp.ClientTimeout,
    ) -> TransportResponse:
        async with self._session().request(
            method, url, data=data, headers=headers, timeout=timeouts, params=params
        ) as resp:
            body = await resp.read()
            return TransportResponse(resp.status, resp.headers, body)

    async def close(self) -> None:
        """Nothing to release: the session is the client's."""


class NoAppAtAddress(aiohttp.ClientConnectionError):
    """:class:`AsgiTransport` has no app at the URL's ``host:port`` (as a refused connection)."""


class Headers(Mapping[str, str]):
    """Response headers: case-insensitive, and ``getall`` for repeated ones (``Set-Cookie``)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: str) -> str:
        for name, value in self._pairs:
            if name.lower() == key.lower():
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __len__(self) -> int:
        return len(set(self))

    def getall(self, key: str, default: list[str] | None = None) -> list[str]:
        values = [v for name, v in self._pairs if name.lower() == key.lower()]
        return values if values or default is None else default


class AsgiTransport:
    """Calls ASGI apps in this process (see the module docstring).

    Args:
        apps: the app serving each address, keyed by ``host:port`` as it appears in URLs.

    The apps' lifespans are not run: close what they hold as their ``on_shutdown`` would. An
    exception that escapes an app is logged and answered 500, as uvicorn does.
    """

    def __init__(self, apps: Mapping[str, AsgiApp]) -> None:
        self.apps = dict(apps)

    async def send(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        timeouts: aiohttp.ClientTimeout,
    ) -> TransportResponse:
        parts = urlsplit(url)
        app = self.apps.get(parts.netloc)
        if app is None:
            raise NoAppAtAddress(f"no app at {parts.netloc} (serving: {', '.join(self.apps)})")
        query = parts.query
        if params:
            query = "&".join(q for q in (query, urlencode(dict(params))) if q)
        body = data or b""
        raw_headers = [(b"host", parts.netloc.encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if body:
            raw_headers.append((b"content-length", str(len(body)).encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": parts.scheme or "http",
            "path": unquote(parts.path) or "/",
            "raw_path": (parts.path or "/").encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 0),
            "server": (parts.hostname or "", parts.port or 80),
        }
        async with asyncio.timeout(timeouts.total):
            return await _call(app, scope, body)

    async def close(self) -> None:
        """Nothing to release."""


async def _call(app: AsgiApp, scope: dict[str, Any], body: bytes) -> TransportResponse:
    sent_request = False
    done = asyncio.Event()
    status: int | None = None
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # the client "disconnects" once the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for name, value in message["headers"]:
                headers.append((name.decode("latin-1"), value.decode("latin-1")))
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    except Exception:
        logger.exception("exception in ASGI application (%s %s)", scope["method"], scope["path"])
        if status is None:
            return TransportResponse(500, Headers([]), b"Internal Server Error")
    finally:
        done.set()
    if status is None:
        raise aiohttp.ServerDisconnectedError("the app returned without an answer")
    return TransportResponse(status, Headers(headers), b"".join(chunks))
