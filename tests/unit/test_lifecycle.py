"""Server hooks (``on_startup`` / ``on_shutdown``) and the one upstream-error mapping."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from nemo_gym.authoring import (
    BaseServerConfig,
    ServerClient,
    SimpleServer,
    StartupError,
    UpstreamError,
    upstream_answer_error,
    upstream_failure,
    upstream_status,
)
from nemo_gym.server.launch import serve
from tests.helpers import serve_app


class RecordingClient(ServerClient):
    def __init__(self, events: list[str]) -> None:
        super().__init__({})
        self.events = events

    async def close(self) -> None:
        self.events.append("client closed")
        await super().close()


class HookedServer(SimpleServer):
    events: Any  # shared with the RecordingClient (a list field would be copied)
    fail: bool = False
    release: Any = None  # an asyncio.Event the slow route waits on
    entered: Any = None

    def setup_webserver(self) -> FastAPI:
        app = self.create_app()

        @app.get("/slow")
        async def slow() -> dict[str, str]:
            self.events.append("request started")
            self.entered.set()
            await self.release.wait()
            self.events.append("request finished")
            return {"ok": "yes"}

        return app

    async def on_startup(self) -> None:
        self.events.append("startup")
        if self.fail:
            raise RuntimeError("no model file at /nowhere.gguf")

    async def on_shutdown(self) -> None:
        self.events.append("shutdown")


def hooked(fail: bool = False) -> HookedServer:
    events: list[str] = []
    return HookedServer(
        config=BaseServerConfig(name="judge_env"),
        server_client=RecordingClient(events),
        events=events,
        fail=fail,
        release=asyncio.Event(),
        entered=asyncio.Event(),
    )


async def test_startup_runs_before_serving_and_shutdown_after_requests_in_flight() -> None:
    server = hooked()
    app = server.setup_webserver()
    assert server.events == []  # building the app runs no hook
    async with serve_app(app) as url:
        assert server.events == ["startup"]
        async with httpx.AsyncClient(base_url=url) as client:
            request = asyncio.create_task(client.get("/slow"))
            await asyncio.wait_for(server.entered.wait(), 10)
            server.release.set()
            assert (await request).json() == {"ok": "yes"}
    assert server.events == [
        "startup",
        "request started",
        "request finished",
        "shutdown",
        "client closed",  # the base closes the pooled client after the hook
    ]


async def test_a_failing_startup_hook_names_the_server_and_closes_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = hooked(fail=True)
    app = server.setup_webserver()
    with pytest.raises(StartupError) as info:
        async with app.router.lifespan_context(app):
            pass
    assert str(info.value) == (
        "server 'judge_env': on_startup raised RuntimeError: no model file at /nowhere.gguf"
    )
    assert server.events == ["startup", "client closed"]  # no on_shutdown: it never started
    assert any(
        "server judge_env did not start: its on_startup raised RuntimeError" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR
    )


def test_a_failing_startup_hook_makes_the_process_exit_non_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = hooked(fail=True).setup_webserver()
    threshold = gc.get_threshold()
    try:
        with pytest.raises(SystemExit) as info:
            serve(app, host="127.0.0.1", port=0, sock=None, graceful_shutdown_s=1)
    finally:
        gc.unfreeze()  # serve() tunes the collector for a server process
        gc.set_threshold(*threshold)
    assert info.value.code == 3
    assert any("server judge_env did not start" in r.getMessage() for r in caplog.records)


def test_upstream_failures_map_to_502_or_504_with_secrets_redacted() -> None:
    secret = "s3cr3t-value-123"
    timeout = UpstreamError(f"POST http://x/v1: timed out (key {secret})", kind="timeout")
    refused = UpstreamError("POST http://x/v1: connection refused", kind="connection")
    assert (upstream_status(timeout), upstream_status(refused)) == (504, 502)
    exc = upstream_failure(timeout, source="resources server 'math'", secrets={secret})
    assert exc.status_code == 504
    assert exc.detail == "resources server 'math': POST http://x/v1: timed out (key ***REDACTED***)"
    assert upstream_failure(refused).detail == "POST http://x/v1: connection refused"


@pytest.mark.parametrize(
    ("upstream", "answered"), [(400, 400), (401, 401), (429, 429), (500, 502), (503, 502)]
)
def test_an_upstream_error_answer_keeps_a_4xx_and_is_502_otherwise(
    upstream: int, answered: int
) -> None:
    head = b'{"error": "bad key sk-abcdefghijklmnopqrstuvwx"}'
    body = head + b"x" * 3000  # the answer quotes the first 2000 bytes
    exc = upstream_answer_error(upstream, body, source="upstream http://m/v1/chat/completions")
    assert exc.status_code == answered
    prefix = f'upstream http://m/v1/chat/completions answered HTTP {upstream}: {{"error": "bad key '
    assert exc.detail == prefix + '***REDACTED***"}' + "x" * (2000 - len(head))


async def test_an_upstream_error_escaping_a_route_is_answered_by_the_same_mapping() -> None:
    server = hooked()
    app = server.setup_webserver()

    @app.get("/judge")
    async def judge() -> None:
        raise UpstreamError("POST http://judge/v1/responses: timed out after 30s", kind="timeout")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        resp = await client.get("/judge")
    assert resp.status_code == 504
    assert resp.json() == {"detail": "POST http://judge/v1/responses: timed out after 30s"}
