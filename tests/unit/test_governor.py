"""The concurrency governor: the AIMD rule on hand-computed sequences, the resizable gate, the
requeue rule, the servers' throttle counts in /health, and the polling loop that reads them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from nemo_gym.head.client import INTERNAL_RETRY, ServerClient
from nemo_gym.rollouts.governor import Admission, Gate, Governor
from nemo_gym.server.http_client import HttpClient, RetryPolicy
from nemo_gym.server.retry_budget import UpstreamCounts, is_throttling
from responses_api_models.openai_model.app import OpenAIModelConfig, OpenAIModelServer
from tests.helpers import asgi_client, free_port, serve_fake_openai


def test_aimd_halves_on_throttled_ticks_and_adds_a_step_on_healthy_ones() -> None:
    governor = Governor(ceiling=64, floor=1, step=4)
    ticks = [  # (answers, throttled) -> limit, worked out by hand
        ((100, 100), 32),  # all throttled: 64 * (1 - 1 * 0.5)
        ((50, 50), 16),
        ((10, 6), 11),  # 6 >= 0.5 * 10: throttled; 16 * (1 - 0.6 * 0.5) = 11.2
        ((10, 4), 15),  # 4 < 5: healthy, + 4
        ((0, 0), 15),  # no answers: no evidence either way
        ((20, 10), 11),  # exactly half: throttled; 15 * 0.75 = 11.25
        ((1, 1), 5),  # int(5.5)
        ((1, 1), 2),
        ((1, 1), 1),
        ((1, 1), 1),  # the floor
        *[((5, 0), 1 + 4 * k) for k in range(1, 16)],  # 5, 9, ..., 61
        ((5, 0), 64),  # 65 capped at the ceiling
        ((5, 0), 64),
    ]
    limits = [governor.observe(*sample) for sample, _ in ticks]
    assert limits == [limit for _, limit in ticks]
    assert governor.throttled_ticks == 8


def test_defaults_scale_with_the_parallelism() -> None:
    assert Governor.for_parallel(64) == Governor(ceiling=64, floor=1, step=4)
    assert Governor.for_parallel(16384) == Governor(ceiling=16384, floor=256, step=1024)
    assert Governor.for_parallel(5) == Governor(ceiling=5, floor=1, step=1)
    assert Governor.for_parallel(64).limit == 64  # starts wide open
    with pytest.raises(ValueError, match="floor"):
        Governor(ceiling=4, floor=5)
    with pytest.raises(ValueError, match="decrease"):
        Governor(ceiling=4, decrease=1.0)


def _row(status: str, kind: str | None) -> dict[str, Any]:
    return {"_ng_status": status, "_ng_failure": {"kind": kind} if kind else None}


def test_only_model_failures_during_throttling_are_run_again_and_only_a_few_times() -> None:
    governor = Governor(ceiling=8, max_requeues=2)
    failed = _row("failed", "model_error")
    assert not governor.should_requeue(failed, 0, 0)  # no throttled tick: a real failure
    governor.observe(4, 4)
    assert governor.should_requeue(failed, 0, 0)
    assert governor.should_requeue(failed, 0, 1)
    assert not governor.should_requeue(failed, 0, 2)  # max_requeues reached: written
    assert not governor.should_requeue(failed, 1, 0)  # started after the throttled tick
    assert not governor.should_requeue(_row("failed", "tool_error"), 0, 0)
    assert not governor.should_requeue(_row("completed", None), 0, 0)


async def _settle() -> None:
    """Let every ready task run until it blocks (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_the_gate_admits_up_to_its_limit_and_follows_resizes() -> None:
    gate = Gate(2)
    entered: list[int] = []

    async def holder(n: int) -> None:
        await gate.enter()
        entered.append(n)

    tasks = [asyncio.create_task(holder(n)) for n in range(5)]
    await _settle()
    assert entered == [0, 1] and gate.active == 2
    gate.resize(1)
    gate.leave()
    await _settle()
    assert entered == [0, 1] and gate.active == 1  # one inside: the new limit is reached
    tasks[2].cancel()  # a waiter that gives up is skipped
    gate.leave()
    await _settle()
    assert entered == [0, 1, 3] and gate.active == 1
    gate.resize(3)
    await _settle()
    assert entered == [0, 1, 3, 4] and gate.active == 2
    await asyncio.gather(*tasks, return_exceptions=True)


def test_throttling_is_429_or_503_with_retry_after() -> None:
    assert is_throttling(429, None) and is_throttling(503, "2")
    assert not is_throttling(503, None) and not is_throttling(500, "2")


async def test_servers_count_upstream_throttling_in_health() -> None:
    async with serve_fake_openai(fail_first=2, fail_status=429) as (url, fake):
        server = OpenAIModelServer(
            config=OpenAIModelConfig(
                name="policy_model", openai_base_url=url, openai_api_key="k", openai_model="m"
            ),
            server_client=ServerClient({}),
        )
        async with asgi_client(server) as client:
            assert (await client.get("/health")).json()["upstream"] == {
                "answers": 0,
                "throttled": 0,
            }
            resp = await client.post("/v1/responses", json={"input": "hello"})
            health = (await client.get("/health")).json()
        # a call between Gym servers (no status retried) is not counted: the fake's answer is
        other = HttpClient()
        await other.request("POST", f"{url}/chat/completions", json={}, retry=INTERNAL_RETRY)
        await other.close()
        await server.server_client.close()
    assert resp.status_code == 200
    assert fake.requests == 4 and fake.failed == 2  # the fake's own count
    assert health["upstream"] == {"answers": 3, "throttled": 2}
    assert other.budget.counts == UpstreamCounts()


async def test_a_storm_is_counted_by_the_fake_and_the_client_alike() -> None:
    async with serve_fake_openai(storm_after=2, storm_s=3600) as (url, fake):
        client = HttpClient()
        policy = RetryPolicy(max_attempts=1)
        statuses = [
            (await client.request("POST", f"{url}/chat/completions", json={}, retry=policy)).status
            for _ in range(4)
        ]
        await client.close()
    assert statuses == [200, 429, 429, 429]  # the storm starts at the 2nd request
    assert fake.failed == 3 and client.budget.counts == UpstreamCounts(answers=4, throttled=3)


async def test_the_watcher_feeds_count_increases_to_the_governor_and_resizes_the_gate() -> None:
    counts = {"answers": 0, "throttled": 0}
    polls = 0
    polled = asyncio.Event()

    async def health(request: web.Request) -> web.Response:
        nonlocal polls
        polls += 1
        polled.set()
        return web.json_response({"status": "ok", "upstream": dict(counts)})

    async def wait(predicate: Any, what: str) -> None:
        """Wait, poll after poll, until ``predicate`` holds (10 s at most)."""
        async with asyncio.timeout(10):
            while not predicate():
                polled.clear()
                await polled.wait()

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    urls = [f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{free_port()}/health"]
    http = HttpClient()
    admission = Admission(64, tick_s=0.01)  # floor 1, step 4
    governor, gate = admission.governor, admission.gate
    failed = _row("failed", "model_error")
    assert not await admission.run_again(failed, 0, 1)  # not watching: written at once
    counts.update(answers=500, throttled=500)  # before the run: a baseline, not counted
    watcher = asyncio.create_task(admission.watch(http, urls))
    try:
        await wait(lambda: polls >= 3, "three polls")
        assert governor.limit == 64
        counts.update(answers=600, throttled=600)
        await wait(lambda: governor.limit != 64, "a decrease")
        seen = polls
        await wait(lambda: polls >= seen + 3, "more polls")
        assert governor.limit == 32 and gate.limit == 32  # one tick with the increase only
        counts.update(answers=700)  # 100 answers, none throttling: + 4
        await wait(lambda: governor.limit != 32, "an increase")
        counts.update(answers=10, throttled=10)  # the server restarted: 10 of 10 are new
        await wait(lambda: governor.limit != 36, "a decrease after a restart")
        assert governor.limit == 18 and gate.limit == 18
        # a row that failed calling the model waits for the poll that explains it
        mark = admission.mark()
        assert not await admission.run_again(failed, mark, 1)  # nothing throttled since
        counts.update(answers=20, throttled=20)
        assert await admission.run_again(failed, mark, 1)
        assert admission.requeued == {1: 1} and governor.limit == 9
    finally:
        watcher.cancel()
        await http.close()
        await runner.cleanup()
