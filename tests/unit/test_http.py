"""Outbound HTTP: bounded retries with Retry-After, timeouts, the retry budget; the model
server's key handling; sessions; the shared error body.

The retry rules are tested in process (an ``AsgiTransport`` to a flaky app); what depends on
real connections (refused, timed out, dropped after the request was sent, queued for the pool)
is tested over loopback sockets with the default aiohttp transport.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from nemo_gym.core.errors import UpstreamError
from nemo_gym.head.client import ServerClient
from nemo_gym.server.base import create_app
from nemo_gym.server.http_client import NO_RETRY, HttpClient, RetryBudget, RetryPolicy
from nemo_gym.server.retry_budget import retry_after_s
from nemo_gym.server.transport import AsgiTransport
from responses_api_models.openai_model.app import OpenAIModelConfig, OpenAIModelServer
from tests.helpers import InProcess, free_port, serve_fake_openai


class Flaky:
    """An app whose first ``fail_first`` calls are answered ``status`` with ``Retry-After``."""

    def __init__(self, fail_first: int, status: int, retry_after: str = "0") -> None:
        self.fail_first, self.status, self.retry_after = fail_first, status, retry_after
        self.requests = 0
        self.app = FastAPI()
        self.app.post("/chat/completions")(self.answer)

    async def answer(self) -> Response:
        self.requests += 1
        if self.requests <= self.fail_first:
            headers = {"Retry-After": self.retry_after}
            return JSONResponse({"error": "busy"}, status_code=self.status, headers=headers)
        return JSONResponse({"ok": True})

    def client(self, **kwargs: Any) -> HttpClient:
        return HttpClient(transport=AsgiTransport({"upstream:8000": self.app}), **kwargs)


URL = "http://upstream:8000/chat/completions"


async def test_rate_limits_are_retried_then_succeed() -> None:
    fake = Flaky(fail_first=2, status=429)
    client = fake.client()
    resp = await client.request(
        "POST", URL, json={"messages": []}, retry=RetryPolicy(max_attempts=4, backoff_base_s=0.01)
    )
    await client.close()
    assert resp.status == 200 and fake.requests == 3


async def test_retries_are_bounded_and_last_status_returned() -> None:
    fake = Flaky(fail_first=100, status=503)
    client = fake.client()
    resp = await client.request(
        "POST", URL, json={"messages": []}, retry=RetryPolicy(max_attempts=3, backoff_base_s=0.01)
    )
    await client.close()
    assert resp.status == 503 and fake.requests == 3


async def test_retry_budget_stops_a_retry_storm() -> None:
    fake = Flaky(fail_first=1000, status=500)
    client = fake.client(budget=RetryBudget(ratio=0.0, min_retries=2))
    policy = RetryPolicy(max_attempts=10, backoff_base_s=0.001)
    for _ in range(3):
        await client.request("POST", URL, json={}, retry=policy)
    await client.close()
    assert fake.requests == 3 + 2  # three calls, two retries in all


async def test_a_retry_after_is_waited_for() -> None:
    fake = Flaky(fail_first=1, status=429, retry_after="1")
    client = fake.client()
    started = time.monotonic()
    resp = await client.request("POST", URL, retry=RetryPolicy(backoff_base_s=0.001))
    await client.close()
    # Backoff alone would be at most 1 ms; the answer asked for 1 s.
    assert resp.status == 200 and time.monotonic() - started >= 1.0


async def test_connection_refused_fails_fast_with_upstream_error() -> None:
    client = HttpClient()
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await client.request(
            "GET",
            f"http://127.0.0.1:{free_port()}/x",
            retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01),
        )
    await client.close()
    assert info.value.kind == "connection" and time.monotonic() - started < 5


async def test_timeout_is_enforced() -> None:
    async with serve_fake_openai() as (url, _):
        client = HttpClient()
        with pytest.raises(UpstreamError) as info:
            await client.request(
                "POST",
                f"{url}/chat/completions",
                timeout_s=0.2,
                json={"messages": [{"role": "user", "content": "FAKE_SLEEP_3"}]},
            )
        await client.close()
    assert info.value.kind == "timeout"


async def test_openai_model_sends_key_and_forces_model_name() -> None:
    async with serve_fake_openai() as (url, fake):
        server = OpenAIModelServer(
            config=OpenAIModelConfig(
                name="policy_model",
                openai_base_url=url,
                openai_api_key="sk-abc",
                openai_model="gpt-x",
            ),
            server_client=ServerClient({}),
        )
        transport = httpx.ASGITransport(app=server.setup_webserver())
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            resp = await client.post("/v1/responses", json={"input": "hello", "model": "other"})
        await server.server_client.close()
    assert resp.status_code == 200
    assert resp.json()["model"] == "gpt-x"
    assert fake.auth == ["Bearer sk-abc"]
    assert "sk-abc" not in repr(server.config)


async def test_sessions_follow_header_or_cookie() -> None:
    app: FastAPI = create_app("s", role="test")

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str]:
        return {"id": request.session["session_id"]}

    setup = InProcess()
    setup.add("s", "resources_servers", app)
    http = setup.client
    first = await http.get("s", "/whoami")
    cookie_id = first.json_sync()["id"]
    assert first.cookies.get("gym_session") == cookie_id
    again = await http.get("s", "/whoami", cookies=first.cookies)
    assert again.json_sync()["id"] == cookie_id  # the cookie carries the session
    header = await http.get("s", "/whoami", headers={"X-Gym-Session": "rollout-7"})
    assert header.json_sync()["id"] == "rollout-7"
    assert header.cookies.get("gym_session") == "rollout-7"  # every answer sets the cookie
    both = await http.get(
        "s", "/whoami", cookies=first.cookies, headers={"X-Gym-Session": "rollout-8"}
    )
    assert both.json_sync()["id"] == "rollout-8"  # the header wins over the cookie
    health = await http.get("s", "/health", cookies=header.cookies)
    assert health.json_sync()["status"] == "ok"
    assert health.cookies.get("gym_session") == "rollout-7"
    await http.close()


async def test_unhandled_exception_becomes_gym_error_body() -> None:
    app: FastAPI = create_app("tools", role="resources_servers")

    @app.post("/boom")
    async def boom() -> None:
        raise KeyError("missing thing")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.post("/boom")
    assert resp.status_code == 500
    assert resp.json() == {
        "error": {"type": "KeyError", "message": "'missing thing'", "server": "tools"}
    }


async def test_a_call_that_may_have_run_is_not_repeated() -> None:
    import asyncio

    from nemo_gym.head.client import INTERNAL_RETRY

    received: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))  # the request arrived...
        writer.close()  # ...and the connection drops before any answer

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = HttpClient()
    with pytest.raises(UpstreamError):
        await client.request("POST", f"{url}/increment", json={}, retry=INTERNAL_RETRY)
    posts = len(received)
    with pytest.raises(UpstreamError):
        await client.request("GET", f"{url}/health", retry=INTERNAL_RETRY)
    await client.close()
    server.close()
    await server.wait_closed()
    assert posts == 1  # the tool call ran at most once
    assert len(received) - posts >= 3  # a GET is safe to repeat (aiohttp may add its own retry)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # 30 s after `now` below
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: no wait
        ("soon", None),  # garbage: the caller's own backoff applies
        ("-3", None),
        ("", None),
    ],
)
def test_retry_after_in_every_form(header: str, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_s(header, now=now) == expected


async def test_a_garbage_retry_after_is_retried_with_backoff_not_an_error() -> None:
    fake = Flaky(fail_first=2, status=429, retry_after="soon")
    client = fake.client()
    resp = await client.request(
        "POST", URL, json={}, retry=RetryPolicy(max_attempts=3, backoff_base_s=0.01)
    )
    await client.close()
    assert resp.status == 200 and fake.requests == 3


def test_the_retry_budget_is_a_sliding_window_per_upstream() -> None:
    now = [1000.0]
    budget = RetryBudget(ratio=0.5, min_retries=1, window_s=10, clock=lambda: now[0])
    for _ in range(4):
        budget.record_request("a:1")
    spent = [budget.try_spend("a:1") for _ in range(4)]
    assert spent == [True, True, True, False]  # 1 + 0.5 * 4 = 3 retries
    assert budget.try_spend("b:2")  # another upstream has its own budget
    now[0] += 11  # the window forgets: a warm-up cannot pay for a later storm, nor starve it
    assert budget.try_spend("a:1") and not budget.try_spend("a:1")


async def test_calls_queued_for_a_pooled_connection_do_not_time_out_early() -> None:
    """16k rollouts in flight queue behind limit_per_host; waiting is not a connect timeout."""
    async with serve_fake_openai() as (url, fake):
        client = HttpClient(limit=1, limit_per_host=1, connect_timeout_s=0.2)
        body = {"messages": [{"role": "user", "content": "FAKE_SLEEP_0.3 hi"}]}
        responses = await asyncio.gather(
            *(
                client.request("POST", f"{url}/chat/completions", json=body, retry=NO_RETRY)
                for _ in range(3)
            )
        )
        await client.close()
    # one connection, three calls of 0.3 s each: the last waited 0.6 s for the pool (> 0.2 s)
    assert [r.status for r in responses] == [200, 200, 200] and fake.requests == 3


async def test_a_deadline_that_passes_in_the_queue_says_so_and_sends_nothing() -> None:
    """A call that never got a connection is not reported as the upstream being slow."""
    async with serve_fake_openai() as (url, fake):
        client = HttpClient(limit=1, limit_per_host=1)
        slow = {"messages": [{"role": "user", "content": "FAKE_SLEEP_1 hi"}]}
        first = asyncio.create_task(
            client.request("POST", f"{url}/chat/completions", json=slow, retry=NO_RETRY)
        )
        await asyncio.sleep(0)  # the first call takes the only connection
        with pytest.raises(UpstreamError) as info:
            await client.request(
                "POST", f"{url}/chat/completions", json={}, timeout_s=0.3, retry=NO_RETRY
            )
        assert (await first).status == 200
        await client.close()
    assert info.value.kind == "timeout"
    assert "not sent" in str(info.value) and "1 connections" in str(info.value)
    assert fake.requests == 1  # the queued call never reached the upstream


async def test_an_upstream_deadline_names_the_deadline() -> None:
    async with serve_fake_openai() as (url, _):
        client = HttpClient()
        with pytest.raises(UpstreamError) as info:
            await client.request(
                "POST",
                f"{url}/chat/completions",
                timeout_s=0.2,
                json={"messages": [{"role": "user", "content": "FAKE_SLEEP_3"}]},
                retry=NO_RETRY,
            )
        await client.close()
    assert info.value.kind == "timeout"
    assert str(info.value).endswith("got no answer within its 0.2s deadline")


def test_open_files_budget_raises_the_soft_limit_and_takes_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    from nemo_gym.server import http_client

    limits = {"now": (1024, 20000)}
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _, value: limits.update(now=value))
    assert http_client.open_files_budget() == 2500  # 20,000 / 8, after raising 1,024 to 20,000
    assert limits["now"] == (20000, 20000)
    assert http_client.open_files_budget(1.0) == 20000


def test_open_files_budget_keeps_the_soft_limit_when_it_may_not_be_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    from nemo_gym.server import http_client

    def refuse(_: int, __: tuple[int, int]) -> None:
        raise ValueError("not allowed to raise maximum limit")

    monkeypatch.setattr(resource, "getrlimit", lambda _: (800, 20000))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert http_client.open_files_budget() == 100  # 800 / 8
