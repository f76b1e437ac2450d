"""NeMo Gym compatibility: ``server_utils``, the HTTP helpers environments call.

Environments written for NeMo Gym call other servers with ``ServerClient.post`` and read the
answer with the awaitable helpers here::

    resp = await self.server_client.post(server_name=..., url_path="/verify", json=body)
    await raise_for_status(resp)        # an aiohttp ``ClientResponseError`` unless 2xx
    data = await get_response_json(resp)

The response is Gym's :class:`~nemo_gym.server.http_client.HttpResponse`, read in full: it has
``status``, ``ok``, ``cookies``, ``headers``, ``await read()``, ``await json()`` and
``await content.read()`` like aiohttp's. :func:`request` calls any URL the same way.

Neighbours: ``nemo_gym.server.client`` (``ServerClient``), ``nemo_gym.server`` (the server base,
the pooled client), ``nemo_gym.global_config`` (the config a server process was given).
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from typing import Any, NamedTuple

import aiohttp
import orjson

from nemo_gym.config_types import BaseServerConfig
from nemo_gym.core.errors import UpstreamError
from nemo_gym.global_config import (
    HEAD_SERVER_KEY_NAME,
    get_first_server_config_dict,
    get_global_config_dict,
)
from nemo_gym.server.base import BaseRunServerInstanceConfig, BaseServer, SimpleServer
from nemo_gym.server.client import ServerClient
from nemo_gym.server.http_client import HttpClient, HttpResponse, RetryPolicy
from nemo_gym.server.routing import ROLLOUT_PATH_PREFIX, TOKEN_CAPTURE_PATH_SEGMENT
from nemo_gym.server.sessions import SESSION_ID_KEY

__all__ = [
    "DEFAULT_HEAD_SERVER_PORT",
    "HEAD_SERVER_KEY_NAME",
    "MAX_NUM_TRIES",
    "SESSION_ID_KEY",
    "BaseRunServerInstanceConfig",
    "BaseServer",
    "BaseServerConfig",
    "ClientResponse",
    "HTTPStatusError",
    "ServerClient",
    "SimpleServer",
    "apply_rollout_prefix",
    "get_first_server_config_dict",
    "get_global_aiohttp_client",
    "get_response_json",
    "get_server_url",
    "is_global_aiohttp_client_request_debug_enabled",
    "is_nemo_gym_fastapi_entrypoint",
    "is_nemo_gym_fastapi_worker",
    "raise_for_status",
    "request",
    "rollout_path_prefix",
]

logger = logging.getLogger(__name__)

#: Attempts of :func:`request` when the connection fails (statuses are answers, not retried).
MAX_NUM_TRIES = 3
DEFAULT_HEAD_SERVER_PORT = 11000
#: What ``ServerClient`` calls and :func:`request` return.
ClientResponse = HttpResponse

_WORKER_ENV = "IS_NEMO_GYM_FASTAPI_WORKER"
_ENTRYPOINT_ENV = "IS_NEMO_GYM_FASTAPI_ENTRYPOINT"


class RequestInfo(NamedTuple):
    """What :class:`HTTPStatusError` knows of the request (aiohttp's fields; URLs as text)."""

    url: str
    method: str
    headers: dict[str, str]
    real_url: str


class HTTPStatusError(UpstreamError, aiohttp.ClientResponseError):  # type: ignore[misc]
    """A server answered a non-2xx status (raised by :func:`raise_for_status`).

    It is aiohttp's ``ClientResponseError`` (``status``, ``message``, ``headers``), as
    environments written for NeMo Gym catch, with the body read in ``response_content``; and
    Gym's :class:`~nemo_gym.core.errors.UpstreamError` (``status``, ``body``).
    """

    def __init__(self, url: str, status: int, content: bytes, headers: Any = None) -> None:
        text = content[:2000].decode("utf-8", errors="replace")
        info = RequestInfo(url, "", {}, url)
        aiohttp.ClientResponseError.__init__(
            self,
            info,  # type: ignore[arg-type]
            (),
            status=status,
            message=text,
            headers=headers,
        )
        self.body = content[:8000].decode("utf-8", errors="replace")
        self.kind = "http"
        self.response_content = content

    def __str__(self) -> str:
        return f"{self.request_info.real_url} answered HTTP {self.status}: {self.message}"


async def raise_for_status(response: Any) -> None:
    """Raise :class:`HTTPStatusError` (with the body) unless ``response`` is 2xx.

    Accepts Gym's responses and aiohttp's alike.
    """
    if response.ok:
        return
    content = await response.read()
    url = str(getattr(response, "url", "") or "")
    raise HTTPStatusError(url, int(response.status), content, getattr(response, "headers", None))


async def get_response_json(response: Any) -> Any:
    """The body of ``response`` parsed as JSON."""
    return orjson.loads(await response.read())


async def request(method: str, url: str, _internal: bool = False, **kwargs: Any) -> HttpResponse:
    """Make one HTTP call to any URL and return the response, read in full.

    A failed connection is tried again, :data:`MAX_NUM_TRIES` attempts in all; an HTTP status
    is returned, not raised (use :func:`raise_for_status`). Keyword arguments are aiohttp's:
    ``json``, ``data``, ``headers``, ``cookies``, ``params`` and ``timeout`` (seconds or an
    ``aiohttp.ClientTimeout``).

    Raises:
        TypeError: an argument this helper does not support.
        UpstreamError: no connection after the last attempt, or the call timed out.
    """
    allowed = {"json", "data", "headers", "cookies", "params", "timeout"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"request(): unsupported argument(s) {unknown}; use {sorted(allowed)}")
    data = kwargs.get("data")
    timeout = kwargs.get("timeout")
    timeout_s = getattr(timeout, "total", timeout)
    retry = RetryPolicy(max_attempts=MAX_NUM_TRIES, backoff_base_s=0.5, retry_statuses=frozenset())
    client = HttpClient()
    try:
        return await client.request(
            method,
            url,
            json=kwargs.get("json"),
            data=data.encode() if isinstance(data, str) else data,
            headers=dict(kwargs.get("headers") or {}),
            cookies=dict(kwargs.get("cookies") or {}),
            params=kwargs.get("params"),
            timeout_s=float(timeout_s) if timeout_s else None,
            retry=retry,
        )
    finally:
        await client.close()


_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HttpClient] = (
    weakref.WeakKeyDictionary()
)


def get_global_aiohttp_client() -> aiohttp.ClientSession:
    """A pooled aiohttp session shared by this process's callers in the running event loop.

    It is the session of one Gym :class:`HttpClient` per event loop (created on first use);
    callers must not close it.
    """
    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None:
        client = _CLIENTS[loop] = HttpClient(limit=100 * 1024, limit_per_host=1024)
    return client.session


def is_global_aiohttp_client_request_debug_enabled() -> bool:
    """Whether failed requests print their arguments: never in Gym, which logs them at debug
    level instead (``logging.getLogger("nemo_gym")``)."""
    return False


def is_nemo_gym_fastapi_worker() -> bool:
    """Whether this process is one of several uvicorn workers of one server (never under
    ``ng_run``, which runs one process per server)."""
    return os.environ.get(_WORKER_ENV) == "1"


def is_nemo_gym_fastapi_entrypoint(file: str) -> bool:
    """Whether ``file`` is the module a uvicorn worker process imports the app from."""
    entrypoint = os.environ.get(_ENTRYPOINT_ENV)
    return is_nemo_gym_fastapi_worker() and bool(entrypoint) and file.endswith(str(entrypoint))


def get_server_url(server_name: str) -> str:
    """``http://host:port`` of the running instance ``server_name``.

    Raises:
        KeyError: no instance of that name in this process's config.
    """
    settings = get_first_server_config_dict(get_global_config_dict(), server_name)
    return f"http://{settings['host']}:{settings['port']}"


def rollout_path_prefix(rollout_id: str | None, *, token_capture: bool = False) -> str:
    """``/ng-rollout/<rollout_id>`` (plus ``/training-token-capture``), or ``""`` without an id.

    Every Gym server routes a path under this prefix as the path itself.
    """
    if not rollout_id:
        return ""
    capture = f"/{TOKEN_CAPTURE_PATH_SEGMENT}" if token_capture else ""
    return f"/{ROLLOUT_PATH_PREFIX}/{rollout_id}{capture}"


def apply_rollout_prefix(
    base_url: str, rollout_id: str | None, *, token_capture: bool = False
) -> str:
    """``base_url`` with :func:`rollout_path_prefix` appended (unchanged without an id)."""
    if not rollout_id:
        return base_url
    return base_url.rstrip("/") + rollout_path_prefix(rollout_id, token_capture=token_capture)
