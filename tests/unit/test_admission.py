"""Outbound call slots (``server.call_slots``) and when an agent starts batch rows
(``server.admission``): first come first served, rows start only as fast as their calls go
out, and no row is stranded by a cancelled one or one that makes no call.

The last two tests run a real agent app and upstream on uvicorn over loopback."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request
from starlette.routing import Route

from nemo_gym.core.errors import UpstreamError
from nemo_gym.rollouts.batching import RunBatcher
from nemo_gym.server.admission import RowAdmission
from nemo_gym.server.call_slots import CallSlots, Held
from nemo_gym.server.http_client import HttpClient
from nemo_gym.server.run_batch import RUN_BATCH_PATH, RunBatchEndpoint
from tests.helpers import serve_app

FAR = 1e12  # a deadline that never passes (loop time)


async def until(check: Any, what: str) -> None:
    """Let the loop run until ``check()`` holds; fail naming ``what`` after 5 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    for _ in itertools.count():
        if check():
            return
        assert loop.time() < deadline, f"not within 5 s: {what}"
        await asyncio.sleep(0)  # one loop turn: the tasks under test run


async def test_a_call_waiting_for_the_total_is_not_overtaken_by_a_later_call() -> None:
    slots = CallSlots(limit_per_host=2, limit=2)
    order: list[str] = []

    async def call(name: str, upstream: str) -> Held:
        _, slot = await slots.acquire(upstream, FAR, f"GET {name}")
        order.append(name)
        return slot

    a1, a2 = await call("a1", "a:1"), await call("a2", "a:1")
    b1 = asyncio.create_task(call("b1", "b:1"))  # the total (2) is taken: it waits
    await until(lambda: slots.queued == 1, "b1 queued")
    slots.release(a1)  # b1's turn; a3, which comes after, must not take it
    a3 = asyncio.create_task(call("a3", "a:1"))
    await until(lambda: "b1" in order, "b1 got the freed slot")
    assert order == ["a1", "a2", "b1"] and slots.queued == 1 and slots.in_use == 2
    slots.release(a2)
    await until(lambda: a3.done(), "a3 got the next one")
    assert order == ["a1", "a2", "b1", "a3"] and slots.queued == 0 and slots.in_use == 2
    slots.release(await b1)
    slots.release(await a3)
    assert slots.in_use == 0


async def test_the_queue_deadline_names_the_limit_and_gives_the_upstream_slot_back() -> None:
    slots = CallSlots(limit_per_host=1, limit=1)
    loop = asyncio.get_running_loop()
    _, held = await slots.acquire("a:1", FAR, "GET a")
    with pytest.raises(UpstreamError) as total:
        await slots.acquire("b:1", loop.time() + 0.05, "GET b")
    assert total.value.kind == "timeout"
    assert "waiting for one of this process's 1 connections (to every upstream)" in str(total.value)
    with pytest.raises(UpstreamError) as per_host:
        await slots.acquire("a:1", loop.time() + 0.05, "GET a2")
    assert "1 connections to a:1 (all busy)" in str(per_host.value)
    slots.release(held)
    _, b = await slots.acquire("b:1", FAR, "GET b again")  # b's slot was given back
    slots.release(b)
    assert slots.queued == 0 and slots.in_use == 0


async def test_a_call_ending_after_its_client_closed_gives_back_what_it_took() -> None:
    slots = CallSlots(limit_per_host=1, limit=1)
    _, held = await slots.acquire("a:1", FAR, "GET a")
    slots.clear()  # the client closed while the call was out
    slots.release(held)
    assert slots.in_use == 0 and not held[0].locked() and not held[1].locked()
    _, again = await slots.acquire("a:1", FAR, "GET a again")  # fresh semaphores, free
    slots.release(again)


async def slots_that_saw_a_call() -> CallSlots:
    """Slots of a client one call has gone through (before any, rows are not held back)."""
    slots = CallSlots(limit_per_host=10, limit=10)
    _, slot = await slots.acquire("model:1", FAR, "POST model")
    slots.release(slot)
    return slots


async def test_rows_start_in_arrival_order_as_calls_take_connections() -> None:
    slots = await slots_that_saw_a_call()
    admission = RowAdmission(slots, max_idle=2)
    started: list[int] = []
    finish = {i: asyncio.Event() for i in range(5)}

    async def row(i: int) -> None:
        async with admission.admitted():
            started.append(i)
            await finish[i].wait()

    tasks = [asyncio.create_task(row(i)) for i in range(5)]
    await until(lambda: admission.waiting == 3, "three rows wait")
    assert started == [0, 1] and admission.running == 2
    _, slot = await slots.acquire("model:1", FAR, "POST model")  # row 0 calls out: room for 1
    await until(lambda: started == [0, 1, 2], "row 2 started")
    finish[1].set()  # a row ends: room for the next
    await until(lambda: started == [0, 1, 2, 3], "row 3 started")
    assert admission.waiting == 1 and admission.running == 3
    slots.release(slot)  # no room made: the running rows now all hold no connection
    for i in (0, 2, 3, 4):
        finish[i].set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert started == [0, 1, 2, 3, 4] and admission.running == 0 and admission.waiting == 0


async def test_a_cancelled_row_or_rows_without_calls_never_strand_the_rows_behind() -> None:
    slots = await slots_that_saw_a_call()
    admission = RowAdmission(slots, max_idle=1)
    first, done = asyncio.Event(), []

    async def row(i: int, wait: asyncio.Event | None = None) -> None:
        async with admission.admitted():
            if wait is not None:
                await wait.wait()
            done.append(i)

    blocker = asyncio.create_task(row(0, first))
    doomed = asyncio.create_task(row(1, asyncio.Event()))
    rest = [asyncio.create_task(row(i)) for i in range(2, 200)]  # they make no call at all
    await until(lambda: admission.waiting == 199, "all but the first wait")
    doomed.cancel()
    first.set()
    await asyncio.wait_for(asyncio.gather(blocker, *rest), 5)
    assert done == list(range(0, 1)) + list(range(2, 200))
    assert doomed.cancelled() and admission.running == 0 and admission.waiting == 0


def agent_with_admission(upstream: str, http: HttpClient, state: dict[str, Any]) -> FastAPI:
    """An agent whose /run calls ``upstream`` once, through ``http``, counting rows running."""
    app = FastAPI()

    @app.post("/run")
    async def run(request: Request) -> Any:
        row = await request.json()
        state["running"] += 1
        state["most"] = max(state["most"], state["running"])
        try:
            if row.get("hold"):
                await asyncio.Event().wait()  # a tool that never ends, holding no connection
            resp = await http.request("POST", f"{upstream}/echo", json=row)
            return {**row, "echo": resp.json_sync(), "_ng_status": "completed"}
        finally:
            state["running"] -= 1

    admission = RowAdmission(http.slots, max_idle=3)
    endpoint = RunBatchEndpoint(app, admission=admission)
    app.router.routes.append(Route(RUN_BATCH_PATH, endpoint, methods=["POST"]))
    return app


def slow_upstream() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        await asyncio.sleep(0.02)  # the upstream's latency: its 2 connections stay busy
        return {"n": (await request.json())["n"]}

    return app


@asynccontextmanager
async def agent_behind_two_connections() -> AsyncIterator[tuple[str, HttpClient, dict[str, int]]]:
    """An agent (max_idle 3) whose calls share 2 connections to a slow upstream; yield its URL,
    a client for the test and the agent's counts of rows running."""
    state = {"running": 0, "most": 0}
    http = HttpClient(limit=2, limit_per_host=2)
    client = HttpClient()
    try:
        async with serve_app(slow_upstream()) as upstream:
            async with serve_app(agent_with_admission(upstream, http, state)) as agent:
                yield agent, client, state
    finally:
        await http.close()
        await client.close()


async def test_an_agent_runs_at_most_its_busy_connections_plus_max_idle_rows() -> None:
    async with agent_behind_two_connections() as (agent, client, state):
        batcher = RunBatcher(client, timeout_s=30.0, connect_timeout_s=5.0)
        rows = [orjson.dumps({"n": i}) for i in range(40)]
        answers = await asyncio.gather(*(batcher.run(f"{agent}/run", r) for r in rows))
        await batcher.close()
    assert [a.json_sync()["echo"]["n"] for a in answers if a is not None] == list(range(40))
    # 2 calls hold a connection and 3 rows may hold none: never more than 5 of 40 at once
    assert state["most"] == 5


async def test_a_row_that_never_started_says_so_when_its_deadline_passes() -> None:
    async with agent_behind_two_connections() as (agent, client, state):
        holding = RunBatcher(client, timeout_s=30.0, connect_timeout_s=5.0)
        assert (await holding.run(f"{agent}/run", orjson.dumps({"n": -1}))) is not None
        held = [
            asyncio.create_task(holding.run(f"{agent}/run", orjson.dumps({"n": i, "hold": 1})))
            for i in range(3)
        ]
        await until(lambda: state["running"] == 3, "three rows hold the agent's idle room")
        batcher = RunBatcher(client, timeout_s=0.5, connect_timeout_s=5.0)
        with pytest.raises(UpstreamError) as late:
            await batcher.run(f"{agent}/run", orjson.dumps({"n": 3}))
        await batcher.close()
        await holding.close()  # the stream goes: the agent cancels the held rows
        await asyncio.gather(*held, return_exceptions=True)
        await until(lambda: state["running"] == 0, "the held rows were cancelled")
    assert late.value.kind == "timeout"
    assert "never started: the agent's connections were all busy" in str(late.value)


async def test_rows_of_an_agent_whose_calls_bypass_gym_s_client_are_not_held_back() -> None:
    async with agent_behind_two_connections() as (agent, client, state):
        holding = RunBatcher(client, timeout_s=30.0, connect_timeout_s=5.0)
        held = [
            asyncio.create_task(holding.run(f"{agent}/run", orjson.dumps({"n": i, "hold": 1})))
            for i in range(8)
        ]
        # no call went through the agent's client: all 8 run, though max_idle is 3
        await until(lambda: state["running"] == 8, "every row started")
        await holding.close()
        await asyncio.gather(*held, return_exceptions=True)
        await until(lambda: state["running"] == 0, "the held rows were cancelled")
