"""example_stateful_counter: tools over HTTP, verify right and wrong, sessions kept apart."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from nemo_gym.authoring import ServerClient
from resources_servers.example_stateful_counter.app import (
    StatefulCounterConfig,
    StatefulCounterServer,
)
from tests.helpers import model_response

RESPONSE = model_response()


def client(**settings: object) -> httpx.AsyncClient:
    server = StatefulCounterServer(
        config=StatefulCounterConfig(name="counter", **settings), server_client=ServerClient({})
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.setup_webserver()), base_url="http://counter"
    )


async def rollout(
    c: httpx.AsyncClient, initial: int, adds: list[int], expected: int
) -> dict[str, object]:
    headers = {"X-Gym-Session": uuid.uuid4().hex}
    row = {
        "responses_create_params": {"input": "count"},
        "initial_count": initial,
        "expected_count": expected,
    }
    assert (await c.post("/seed_session", json=row, headers=headers)).status_code == 200
    for add in adds:
        resp = await c.post("/increment_counter", json={"count": add}, headers=headers)
        assert resp.json() == {"success": True}
        await asyncio.sleep(0)  # let other rollouts interleave
    value = (await c.post("/get_counter_value", json={}, headers=headers)).json()["count"]
    assert value == initial + sum(adds)
    verdict = await c.post("/verify", json={**row, "response": RESPONSE}, headers=headers)
    return dict(verdict.json())


async def test_verify_rewards_the_right_final_count_only() -> None:
    async with client() as c:
        right = await rollout(c, 5, [1, 2], expected=8)
        wrong = await rollout(c, 5, [1], expected=8)
    assert (right["reward"], right["final_count"]) == (1.0, 8)
    assert (wrong["reward"], wrong["final_count"]) == (0.0, 6)


async def test_tools_refuse_a_session_that_was_not_seeded() -> None:
    async with client() as c:
        resp = await c.post(
            "/increment_counter", json={"count": 1}, headers={"X-Gym-Session": "never-seeded"}
        )
    assert resp.status_code == 400 and "not seeded" in resp.json()["detail"]


async def test_many_concurrent_rollouts_never_see_each_others_state() -> None:
    async with client() as c:
        results = await asyncio.gather(
            *(rollout(c, initial=i, adds=[i, 1, -2], expected=2 * i - 1) for i in range(50))
        )
    assert all(r["reward"] == 1.0 for r in results)


async def test_rollouts_that_never_verify_leave_at_most_max_sessions_counters() -> None:
    async with client(max_sessions=2) as c:
        for session in ("a", "b", "c"):  # seeded, never verified
            row = {"responses_create_params": {"input": "count"}, "initial_count": 7}
            await c.post("/seed_session", json=row, headers={"X-Gym-Session": session})
        counts = {
            s: await c.post("/get_counter_value", json={}, headers={"X-Gym-Session": s})
            for s in ("a", "b", "c")
        }
    assert counts["a"].status_code == 400  # the oldest was dropped
    assert [counts[s].json() for s in ("b", "c")] == [{"count": 7}, {"count": 7}]
