"""``server.replicas.ReplicaSet``: which replica gets a call, against a real head server table.

The head server's app (``head.app``) serves the replica table on a loopback port; replicas are
registered through its ``POST /replicas``, as replica actors do.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from nemo_gym.core.errors import UpstreamError
from nemo_gym.head.app import create_head_app
from nemo_gym.server.base import create_app
from nemo_gym.server.http_client import HttpClient
from nemo_gym.server.replicas import ReplicaSet
from tests.helpers import InProcess, serve_app


def _config(head_port: int) -> dict[str, Any]:
    placed = {"entrypoint": "app.py", "num_replicas": 2}
    return {
        "ray_head_node_address": "127.0.0.1:6379",
        "head_server": {"host": "127.0.0.1", "port": head_port},
        "env": {"resources_servers": {"weather": placed}},
        "agent": {"responses_api_agents": {"simple_agent": placed}},
        "model": {"responses_api_models": {"openai_model": {"entrypoint": "app.py"}}},
    }


def _info(instance: str, replica: int, port: int) -> dict[str, Any]:
    return {
        "instance": instance,
        "replica": replica,
        "url": f"http://127.0.0.1:{port}",
        "host": "127.0.0.1",
        "port": port,
        "pid": 1,
        "node_id": "n" * 56,
        "node_ip": "127.0.0.1",
        "actor_pid": 1,
        "start_time": time.time(),
    }


async def _register(head: str, *infos: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as client:
        for info in infos:
            assert (await client.post(f"{head}/replicas", json=info)).status_code == 200


@asynccontextmanager
async def env_replicas() -> AsyncIterator[tuple[str, ReplicaSet]]:
    """A head listing env replicas on 9001 and 9002, and a ReplicaSet reading it (no refresh
    within a test); yields the head's URL and the set."""
    async with serve_app(create_head_app({}, [])) as head:
        await _register(head, _info("env", 0, 9001), _info("env", 1, 9002))
        http = HttpClient()
        try:
            yield head, ReplicaSet(_config(int(head.rsplit(":", 1)[1])), http, refresh_s=60.0)
        finally:
            await http.close()


async def test_calls_spread_over_replicas_and_a_rollout_stays_on_one() -> None:
    async with serve_app(create_head_app({}, [])) as head:
        port = int(head.rsplit(":", 1)[1])
        await _register(head, _info("env", 0, 9001), _info("env", 1, 9002))
        await _register(head, _info("agent", 0, 9101), _info("agent", 1, 9102))
        http = HttpClient()
        replicas = ReplicaSet(_config(port), http)
        try:
            assert replicas.placed("env") and replicas.placed("agent")
            assert not replicas.placed("model")  # no num_replicas: its configured address
            async with replicas.lease("model") as url:
                assert url is None
            # sequential calls without a session take turns (fewest served first)
            picked = []
            for _ in range(4):
                async with replicas.lease("agent") as url:
                    picked.append(url)
            assert picked == ["http://127.0.0.1:9101", "http://127.0.0.1:9102"] * 2
            # the fewest in flight wins: with one call held on replica 0, the next goes to 1
            async with replicas.lease("agent") as held:
                async with replicas.lease("agent") as other:
                    assert (held, other) == ("http://127.0.0.1:9101", "http://127.0.0.1:9102")
            # every call of one rollout to the resources server reaches the same replica
            headers_a = {"X-Gym-Session": "a"}
            async with replicas.lease("env", headers_a) as first_a:
                pass
            async with replicas.lease("env", {"X-Gym-Session": "b"}) as first_b:
                pass
            assert {first_a, first_b} == {"http://127.0.0.1:9001", "http://127.0.0.1:9002"}
            for _ in range(3):
                async with replicas.lease("env", headers_a) as url:
                    assert url == first_a
                async with replicas.lease("env", cookies={"gym_session": "b"}) as url:
                    assert url == first_b
        finally:
            await http.close()


async def test_a_rollout_whose_replica_is_gone_fails_at_once() -> None:
    async with env_replicas() as (head, replicas):
        session = {"X-Gym-Session": "s"}
        async with replicas.lease("env", session) as url:
            assert url == "http://127.0.0.1:9001"
        # replica 0 restarted elsewhere: it registered again with a new address
        await _register(head, _info("env", 0, 9003))
        # the cached table still names 9001, so the call goes there and cannot connect
        with pytest.raises(UpstreamError):
            async with replicas.lease("env", session):
                raise UpstreamError("connection refused", kind="connection")
        with pytest.raises(UpstreamError, match="held this rollout's state is gone"):
            async with replicas.lease("env", session):
                pass
        # a new rollout goes to a live replica, the restarted one included
        async with replicas.lease("env", {"X-Gym-Session": "t"}) as url:
            assert url in ("http://127.0.0.1:9003", "http://127.0.0.1:9002")


async def test_no_registered_replica_is_a_clear_error() -> None:
    async with serve_app(create_head_app({}, [])) as head:
        http = HttpClient()
        replicas = ReplicaSet(_config(int(head.rsplit(":", 1)[1])), http)
        try:
            with pytest.raises(UpstreamError, match="no replica of 'agent' is registered"):
                async with replicas.lease("agent"):
                    pass
        finally:
            await http.close()


async def test_the_instance_table_is_not_all_healthy_while_a_replica_is_still_starting() -> None:
    """``/server_instances`` during start-up: an instance with 1 of its 2 replicas registered
    shows that replica and its placement process, whose ``/health`` says 503 until both are up
    (found by ``bench/ray_scale_bench.py``: the table read all healthy before ng_run did)."""
    setup = InProcess()
    replica_app = create_app("agent", role="responses_api_agents")
    placement = FastAPI()
    ready = {"now": False}

    @placement.get("/health")
    async def health() -> Response:
        return Response(status_code=200 if ready["now"] else 503)

    placement_url = setup.add("agent", "responses_api_agents", placement)
    setup.add("agent-0", "responses_api_agents", replica_app)
    setup.add("agent-1", "responses_api_agents", replica_app)
    row = {
        "name": "agent",
        "process_name": "agent",
        "server_type": "responses_api_agents",
        "implementation": "simple_agent",
        "host": "agent.in-process",
        "port": 8000,
        "url": placement_url,
        "pid": os.getpid(),
        "start_time": time.time(),
    }
    head = create_head_app(_config(8000), [row], http=setup.client.http)
    setup.add("head", "head_server", head)

    def replica(i: int) -> dict[str, Any]:
        return {**_info("agent", i, 8000), "url": f"http://agent-{i}.in-process:8000"}

    async with setup.http() as http:

        async def table() -> list[tuple[int | None, str]]:
            rows = (await http.get("http://head.in-process:8000/server_instances")).json()
            return [(r["replica"], r["status"]) for r in rows]

        assert await table() == [(None, "unhealthy (HTTP 503)")]
        assert (await http.post("http://head.in-process:8000/replicas", json=replica(0))).is_success
        assert await table() == [(0, "healthy"), (None, "unhealthy (HTTP 503)")]
        ready["now"] = True  # the placement process saw both replicas up; the second registered
        assert (await http.post("http://head.in-process:8000/replicas", json=replica(1))).is_success
        assert await table() == [(0, "healthy"), (1, "healthy")]


async def test_new_rollouts_pass_over_a_replica_that_refused_while_the_head_still_lists_it() -> (
    None
):
    async with env_replicas() as (_, replicas):
        with pytest.raises(UpstreamError):
            async with replicas.lease("env", {"X-Gym-Session": "a"}) as url:
                assert url == "http://127.0.0.1:9001"
                raise UpstreamError("connection refused", kind="connection")
        # the head still lists 9001 (Ray has not restarted it yet): every new rollout,
        # however few calls 9001 has in flight, goes to 9002
        for session in "bcd":
            async with replicas.lease("env", {"X-Gym-Session": session}) as url:
                assert url == "http://127.0.0.1:9002"
