"""``ray_support.proxy``: a replicated instance's own address passes requests on to a replica,
and streams ``/run_batch`` answers through as each rollout ends.

Real parts on loopback, without a Ray cluster: the head server's app with a registered replica
(as replica actors register), an agent app with ``/run_batch`` on uvicorn as that replica, and
the proxy on aiohttp, as the placement process serves it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web
from fastapi import FastAPI, Request
from starlette.routing import Route

from nemo_gym.head.app import create_head_app
from nemo_gym.ray_support.proxy import proxy_handler
from nemo_gym.rollouts.batching import RunBatcher
from nemo_gym.server.http_client import HttpClient
from nemo_gym.server.replicas import ReplicaSet
from nemo_gym.server.run_batch import RUN_BATCH_PATH, RunBatchEndpoint
from tests.helpers import serve_app
from tests.unit.test_replicas import _info, _register


def replica_app(release: asyncio.Event) -> FastAPI:
    """An agent replica: ``/run`` answers at once, or once ``release`` is set for "wait"."""
    app = FastAPI()

    @app.post("/run")
    async def run(request: Request) -> Any:
        row = await request.json()
        if row["input"] == "wait":
            await release.wait()
        return {**row, "reward": float(len(row["input"])), "_ng_status": "completed"}

    app.router.routes.append(Route(RUN_BATCH_PATH, RunBatchEndpoint(app), methods=["POST"]))
    return app


@asynccontextmanager
async def proxied_agent(release: asyncio.Event) -> AsyncIterator[str]:
    """The proxy of instance ``agent`` (one replica) on a loopback port; yields its URL."""
    async with serve_app(create_head_app({}, [])) as head, serve_app(replica_app(release)) as rep:
        await _register(head, _info("agent", 0, int(rep.rsplit(":", 1)[1])))
        config = {
            "ray_head_node_address": "127.0.0.1:6379",  # read only: no cluster is joined
            "head_server": {"host": "127.0.0.1", "port": int(head.rsplit(":", 1)[1])},
            "agent": {
                "responses_api_agents": {
                    "simple_agent": {"entrypoint": "app.py", "num_replicas": 1}
                }
            },
        }
        http = HttpClient()
        app = web.Application()
        handler = proxy_handler("agent", ReplicaSet(config, http), http)
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            release.set()
            await runner.cleanup()
            await http.close()


async def test_a_batch_answer_comes_through_as_each_rollout_ends() -> None:
    release = asyncio.Event()
    async with proxied_agent(release) as proxy:
        http = HttpClient()
        batcher = RunBatcher(http, timeout_s=30.0, connect_timeout_s=5.0)
        fast, waiting = (
            asyncio.create_task(batcher.run(f"{proxy}/run", orjson.dumps({"input": text})))
            for text in ("ab", "wait")
        )
        done, _ = await asyncio.wait({fast}, timeout=10)
        assert fast in done and not waiting.done()  # before the batch's last row ended
        answer = fast.result()
        assert answer is not None and answer.json_sync()["reward"] == 2.0
        release.set()
        last = await asyncio.wait_for(waiting, 10)
        assert last is not None and last.json_sync()["reward"] == 4.0
        await batcher.close()
        await http.close()


async def test_other_requests_come_back_whole() -> None:
    async with proxied_agent(asyncio.Event()) as proxy:
        http = HttpClient()
        resp = await http.request("POST", f"{proxy}/run", json={"input": "abc"})
        await http.close()
    assert resp.status == 200 and resp.json_sync()["reward"] == 3.0
