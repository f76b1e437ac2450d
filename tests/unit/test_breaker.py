"""The collector's circuit breaker: a server that is down pauses the run instead of failing rows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from time import monotonic
from typing import Any

import pytest
from fastapi import FastAPI, Request

from nemo_gym.rollouts.breaker import ServerBreaker, ServersDown, health_probe
from nemo_gym.rollouts.collect import MAX_REQUEUES, collect
from nemo_gym.rollouts.inputs import expand
from nemo_gym.rollouts.output import RowWriter, read_existing
from nemo_gym.rollouts.summary import summarise
from nemo_gym.server.http_client import HttpClient
from tests.helpers import serve_app


class SteppedTime:
    """A clock that only moves when the breaker sleeps; records the sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def started(down: list[str], up: dict[str, float] | None = None) -> dict[str, float | None]:
    """A probe's answer: ``down`` did not answer, ``up`` started at the given times."""
    return {**dict.fromkeys(down), **(up if up is not None else {"agent": 0.0})}


class ScriptedProbe:
    """Answers the probe from a script of "down" lists; the last entry repeats."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> dict[str, float | None]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return started(answer)


async def test_failures_while_every_server_answers_are_the_rollouts_own() -> None:
    time = SteppedTime()
    probe = ScriptedProbe([])
    breaker = ServerBreaker(probe, recheck_s=1.0, clock=time.clock, sleep=time.sleep)
    assert [await breaker.is_down() for _ in range(50)] == [False] * 50
    assert probe.calls == 1  # one probe answers for all failures of the same second
    time.now += 1.0
    assert await breaker.is_down() is False
    assert probe.calls == 2


async def test_a_server_that_restarted_during_the_rollout_runs_it_again() -> None:
    """ng_run restarts a killed server within a second or two, often before the probe: the
    server answers, but its start time is later than the failed rollout's beginning."""
    time = SteppedTime()
    answers = {"agent": 10.0, "model": 10.0}

    async def probe() -> dict[str, float | None]:
        return dict(answers)

    breaker = ServerBreaker(probe, recheck_s=1.0, clock=time.clock, sleep=time.sleep)
    assert await breaker.is_down(since=50.0) is False  # both started before the rollout
    answers["model"] = 60.0  # the model was restarted at 60
    time.now += 1.0
    assert await breaker.is_down(since=50.0) is True  # began at 50: it failed by the restart
    assert await breaker.is_down(since=61.0) is False  # began after the restart: its own
    assert not breaker.is_open and breaker.pauses == 0  # nothing is down, nothing pauses


async def test_a_down_server_pauses_until_it_answers_with_backoff() -> None:
    time = SteppedTime()
    probe = ScriptedProbe(["model"], ["model"], ["model"], ["model"], [])
    breaker = ServerBreaker(
        probe, poll_min_s=0.25, poll_max_s=1.0, clock=time.clock, sleep=time.sleep
    )
    assert await breaker.is_down() is True
    assert breaker.is_open and breaker.down == ["model"]
    assert await breaker.is_down() is True  # open: no new probe
    assert probe.calls == 1
    await asyncio.wait_for(breaker.wait_closed(), 5)
    assert not breaker.is_open
    assert time.sleeps == [0.25, 0.5, 1.0, 1.0]  # doubling, capped at poll_max_s
    assert probe.calls == 5 and breaker.pauses == 1
    await breaker.close()


async def test_a_server_down_longer_than_the_limit_stops_the_collection() -> None:
    time = SteppedTime()
    breaker = ServerBreaker(
        ScriptedProbe(["resources"]),
        max_down_s=10.0,
        poll_max_s=4.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert await breaker.is_down() is True
    with pytest.raises(ServersDown, match=r"resources did not answer for 12 s"):
        await asyncio.wait_for(breaker.wait_closed(), 5)
    assert time.sleeps == [0.25, 0.5, 1, 2, 4, 4]  # 11.75 s: past 10 s at the sixth probe


async def test_the_health_probe_names_the_servers_that_do_not_answer() -> None:
    app = FastAPI()
    healthy = {"ok": True}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        if not healthy["ok"]:
            from fastapi import HTTPException

            raise HTTPException(503)
        return {"status": "ok", "uptime_seconds": 0.5}

    http = HttpClient(connect_timeout_s=2.0)
    try:
        async with serve_app(app) as url:
            with_refused = {"agent": url, "gone": "http://127.0.0.1:9"}  # port 9: nothing there
            probe = health_probe(http, with_refused, timeout_s=2.0)
            before = monotonic()
            answers = await probe()
            assert answers["gone"] is None
            agent_started = answers["agent"]
            assert agent_started is not None and agent_started <= before  # up before the probe
            healthy["ok"] = False
            assert await probe() == {"agent": None, "gone": None}
    finally:
        await http.close()


def agent_app(state: dict[str, Any]) -> FastAPI:
    """An agent whose rollouts fail while ``state["down"]`` is set (its model is "down")."""
    app = FastAPI()

    @app.post("/run")
    async def run(request: Request) -> dict[str, Any]:
        row = await request.json()
        state["calls"] += 1
        if state["down"]:
            state["failed_calls"] += 1
            return {
                **row,
                "reward": None,
                "_ng_status": "failed",
                "_ng_failure": {"kind": "model_error", "message": "cannot connect to model"},
            }
        return {**row, "reward": 1.0, "_ng_status": "completed", "_ng_failure": None}

    return app


async def collect_with(
    tmp_path: Path, state: dict[str, Any], breaker: ServerBreaker | None
) -> list[dict[str, Any]]:
    tasks = expand([{"responses_create_params": {"input": f"q{i}"}} for i in range(10)], 2)
    out = tmp_path / "out.jsonl"
    writer = RowWriter(out)
    async with serve_app(agent_app(state)) as url:
        await collect(
            tasks,
            run_url=lambda task: url + "/run",
            writer=writer,
            parallel=4,
            timeout_s=30,
            summary=summarise([]),
            on_done=lambda: None,
            breaker=breaker,
        )
    writer.close()
    rows, torn = read_existing(out)
    assert torn == 0
    return rows


async def test_rollouts_that_failed_while_the_model_was_down_are_run_again(tmp_path: Path) -> None:
    state = {"down": True, "calls": 0, "failed_calls": 0, "probes": 0}

    async def probe() -> dict[str, float | None]:
        state["probes"] += 1
        if state["probes"] == 4:  # the model is back at the watcher's third probe
            state["down"] = False
        return started(["model"] if state["down"] else [])

    breaker = ServerBreaker(probe, poll_min_s=0.01, poll_max_s=0.02)
    rows = await collect_with(tmp_path, state, breaker)
    assert len(rows) == 20
    assert sorted((r["_ng_task_index"], r["_ng_repeat_index"]) for r in rows) == [
        (t, k) for t in range(10) for k in range(2)
    ]
    assert [r["_ng_status"] for r in rows] == ["completed"] * 20
    # The four rollouts in flight when the model went down failed; the breaker opened at the
    # first, so no other rollout started until it was back, and each of the four ran once more.
    assert state["failed_calls"] == 4
    assert state["calls"] == 20 + 4
    assert breaker.pauses == 1


async def test_without_the_breaker_or_with_a_healthy_probe_failures_are_written(
    tmp_path: Path,
) -> None:
    state = {"down": True, "calls": 0, "failed_calls": 0}

    async def healthy() -> dict[str, float | None]:
        return started([])

    rows = await collect_with(tmp_path, state, ServerBreaker(healthy))
    assert [r["_ng_status"] for r in rows] == ["failed"] * 20
    assert state["calls"] == 20  # a failure while every server answers is not run again


async def test_a_rollout_is_put_back_at_most_max_requeues_times(tmp_path: Path) -> None:
    state = {"down": True, "calls": 0, "failed_calls": -1000}  # never comes back by itself
    probes = {"n": 0}

    async def flapping() -> dict[str, float | None]:
        probes["n"] += 1
        return started(["model"] if probes["n"] % 2 else [])  # down at failures, up when watched

    breaker = ServerBreaker(flapping, poll_min_s=0.001, recheck_s=0.0)
    rows = await collect_with(tmp_path, state, breaker)
    assert len(rows) == 20
    assert [r["_ng_status"] for r in rows] == ["failed"] * 20
    assert state["calls"] == 20 * (1 + MAX_REQUEUES)
