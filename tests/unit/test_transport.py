"""The client's transports: ``AsgiTransport`` answers as a server on a socket would, and the
head server, ``fetch_global_config`` and ``ng_status``'s ``get_sync`` go through the one client."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
import yaml
from fastapi import FastAPI, Request, Response

from nemo_gym.core.errors import GymError, UpstreamError
from nemo_gym.head.app import create_head_app
from nemo_gym.server.base import create_app
from nemo_gym.server.client import fetch_global_config, get_sync
from nemo_gym.server.http_client import NO_RETRY, HttpClient, HttpResponse, RetryPolicy
from nemo_gym.server.transport import AsgiTransport
from tests.helpers import InProcess, free_port, serve_app


def echo_app() -> FastAPI:
    app = create_app("echo", role="resources_servers")

    @app.post("/echo/{name}")
    async def echo(name: str, request: Request, response: Response) -> dict[str, Any]:
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        response.headers["X-Echo"] = name
        return {
            "path": request.url.path,
            "query": dict(request.query_params),
            "body": (await request.body()).decode(),
            "length": request.headers.get("content-length"),
            "custom": request.headers.get("x-custom"),
            "host": request.headers.get("host"),
        }

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    return app


async def call_echo(http: HttpClient, base: str) -> HttpResponse:
    return await http.request(
        "POST",
        f"{base}/echo/w%20x?q=1",
        data=b"hello",
        headers={"X-Custom": "yes"},
        params={"r": "2"},
        retry=NO_RETRY,
    )


def seen(resp: HttpResponse) -> tuple[int, dict[str, Any], str | None, dict[str, str]]:
    answer = resp.json_sync()
    answer.pop("host")  # the address differs by construction
    return resp.status, answer, resp.headers.get("x-echo"), resp.cookies


async def test_in_process_answers_as_the_same_app_on_a_socket() -> None:
    app = echo_app()
    in_process = HttpClient(transport=AsgiTransport({"echo:8000": app}))
    over_tcp = HttpClient()
    async with serve_app(app) as url:
        via_socket = await call_echo(over_tcp, url)
    direct = await call_echo(in_process, "http://echo:8000")
    await over_tcp.close()
    await in_process.close()
    expected_answer = {
        "path": "/echo/w x",
        "query": {"q": "1", "r": "2"},
        "body": "hello",
        "length": "5",
        "custom": "yes",
    }
    cookies = {"a": "1", "b": "2", "gym_session": direct.cookies.get("gym_session", "")}
    assert seen(direct) == (200, expected_answer, "w x", cookies)
    assert seen(via_socket)[:3] == seen(direct)[:3]
    assert set(via_socket.cookies) == set(direct.cookies) == {"a", "b", "gym_session"}
    assert direct.json_sync()["host"] == "echo:8000"


async def test_an_app_exception_is_a_500_and_an_unknown_address_a_connection_error() -> None:
    http = HttpClient(transport=AsgiTransport({"echo:8000": echo_app()}))
    boom = await http.request("GET", "http://echo:8000/boom", retry=NO_RETRY)
    assert boom.status == 500
    error = boom.json_sync()["error"]
    assert error == {"type": "RuntimeError", "message": "kaput", "server": "echo"}
    with pytest.raises(UpstreamError, match="no app at nowhere:1") as info:
        await http.request("GET", "http://nowhere:1/x", retry=RetryPolicy(max_attempts=1))
    assert info.value.kind == "connection"


async def test_the_deadline_applies_in_process() -> None:
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> None:
        await asyncio.Event().wait()  # never answers

    http = HttpClient(transport=AsgiTransport({"slow:8000": app}))
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await http.request("GET", "http://slow:8000/slow", timeout_s=0.2, retry=NO_RETRY)
    assert info.value.kind == "timeout" and time.monotonic() - started < 5


async def test_the_head_server_probes_servers_with_the_pooled_client() -> None:
    setup = InProcess()
    healthy = setup.add("tools", "resources_servers", create_app("tools", role="resources_servers"))
    sick = FastAPI()

    @sick.get("/health")
    async def health() -> Response:
        return Response(status_code=503)

    sick_url = setup.add("sick", "resources_servers", sick)
    row = {"process_name": "x", "server_type": "resources_servers", "implementation": "impl"}
    rows = [
        {**row, "name": "tools", "host": "tools", "port": 8000, "url": healthy},
        {**row, "name": "sick", "host": "sick", "port": 8000, "url": sick_url},
        {**row, "name": "gone", "host": "gone", "port": 1, "url": "http://gone.in-process:1"},
        {**row, "name": "dead", "host": "d", "port": 1, "url": "http://d:1", "pid": None},
    ]
    for r in rows:
        r.setdefault("pid", os.getpid())
        r["start_time"] = time.time()
    head = create_head_app({"k": "v"}, rows, http=setup.client.http)
    setup.add("head", "head_server", head)
    async with setup.http() as http:
        listing = (await http.get("http://head.in-process:8000/server_instances")).json()
        config = (await http.get("http://head.in-process:8000/global_config_dict_yaml")).text
    statuses = {r["name"]: r["status"] for r in listing}
    assert statuses == {
        "tools": "healthy",
        "sick": "unhealthy (HTTP 503)",
        "gone": "unreachable",
        "dead": "exited",
    }
    assert yaml.safe_load(config) == {"k": "v"}


async def test_fetch_global_config_reads_the_head_and_names_a_missing_one() -> None:
    head = create_head_app({"policy_model_name": "m"}, [])
    async with serve_app(head) as url:  # served by this loop: fetch from another thread
        assert await asyncio.to_thread(fetch_global_config, url) == {"policy_model_name": "m"}
    nobody = f"http://127.0.0.1:{free_port()}"
    # Called with a loop running in this thread, the call runs in a fresh loop of its own.
    with pytest.raises(GymError, match=f"could not reach the head server at {nobody}"):
        fetch_global_config(nobody)


def test_get_sync_outside_a_loop() -> None:
    with pytest.raises(UpstreamError) as info:
        get_sync(f"http://127.0.0.1:{free_port()}/health", timeout_s=5)
    assert info.value.kind == "connection"
