"""Requests to a replicated instance's own address, passed on to one of its replicas.

The placement process (``ray_support.driver``) serves the instance's configured address, so a
caller that knows only that address (``ng_collect_rollouts`` calling an agent, ``curl``) reaches
the replicas too. Each request goes to the replica ``server.replicas`` picks (fewest calls in
flight, rollout affinity kept) and its answer comes back whole, except ``/run_batch``: its
answer is streamed through as the replica writes it, so each rollout's record reaches the
collector when that rollout ends rather than when the batch's last one does, and the proxy
holds no batch's answers. Neighbours: ``ray_support.driver`` (mounts it),
``server.run_batch`` (the streamed route).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.http_client import HttpClient
from nemo_gym.server.replicas import ReplicaSet
from nemo_gym.server.run_batch import RUN_BATCH_PATH

#: Hop-by-hop and length headers the proxy does not copy.
SKIP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


def _copy_headers(source: Any, target: web.StreamResponse) -> None:
    for key, value in source.items():
        if key.lower() not in SKIP_HEADERS:
            target.headers.add(key, value)


def proxy_handler(name: str, replicas: ReplicaSet, http: HttpClient) -> Any:
    """The aiohttp handler passing every request for ``name`` on to one of its replicas."""

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP_HEADERS}
        body = await request.read()
        async with replicas.lease(name, headers, dict(request.cookies)) as replica:
            assert replica is not None
            url = replica + request.path_qs
            if request.method == "POST" and request.path == RUN_BATCH_PATH:
                return await _stream(request, http, url, body, headers)
            resp = await http.request(request.method, url, data=body, headers=headers)
        out = web.Response(status=resp.status, body=resp.body)
        _copy_headers(resp.headers, out)
        return out

    return handler


async def _stream(
    request: web.Request, http: HttpClient, url: str, body: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    """``POST url`` with the answer passed on chunk by chunk.

    Raises:
        UpstreamError: (``connection``) the replica could not be reached; nothing was sent.
    """
    # no total deadline: each row has its own, which the replica enforces
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=http.connect_timeout_s)
    try:
        upstream = await http.session.post(url, data=body, headers=headers, timeout=timeout)
    except aiohttp.ClientError as exc:
        message = f"POST {url} failed: {type(exc).__name__}: {exc}"
        raise UpstreamError(message, kind="connection") from exc
    async with upstream:
        out = web.StreamResponse(status=upstream.status)
        _copy_headers(upstream.headers, out)
        await out.prepare(request)
        async for chunk in upstream.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
    return out
