"""``/run_batch``: rows to one agent share streaming requests, with ``/run``'s results and
failure meanings (``server.run_batch`` on the agent, ``rollouts.batching`` in the collector).

Every test runs a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import weakref
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, HTTPException, Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from nemo_gym.core.errors import UpstreamError
from nemo_gym.rollouts.batching import RunBatcher
from nemo_gym.rollouts.collect import collect
from nemo_gym.rollouts.inputs import expand
from nemo_gym.rollouts.output import RowWriter, read_existing
from nemo_gym.rollouts.summary import summarise
from nemo_gym.server.http_client import HttpClient
from nemo_gym.server.run_batch import RUN_BATCH_PATH, RunBatchEndpoint
from tests.helpers import serve_app


def agent_app(state: dict[str, Any], batch: bool = True) -> FastAPI:
    """An agent whose /run echoes the row, fails for some, and can be slow."""
    app = FastAPI()
    state.setdefault("runs", 0)
    state.setdefault("batches", 0)
    state.setdefault("cancelled", asyncio.Event())
    state.setdefault("waiting", asyncio.Event())
    state.setdefault("release", asyncio.Event())

    @app.post("/run")
    async def run(request: Request) -> Any:
        row = await request.json()
        state["runs"] += 1
        text = row["responses_create_params"]["input"]
        if text == "bad":
            raise HTTPException(422, "bad row")
        if text == "boom":
            raise RuntimeError("the agent broke")
        if text == "wait":
            state["waiting"].set()
            await state["release"].wait()
        if text == "slow":
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                state["cancelled"].set()
                raise
        return {**row, "reward": float(len(text)), "_ng_status": "completed"}

    if batch:
        app.router.routes.append(Route(RUN_BATCH_PATH, Counted(app, state), methods=["POST"]))
    return app


class Counted(RunBatchEndpoint):
    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        super().__init__(app)
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.state["batches"] += 1
        await super().__call__(scope, receive, send)


async def run_collection(url: str, tmp: Path, inputs: list[str], run_batch: bool) -> list[Any]:
    tasks = expand([{"responses_create_params": {"input": t}} for t in inputs], 1)
    out = tmp / f"out_{run_batch}.jsonl"
    writer = RowWriter(out)
    summary = summarise([])
    await collect(
        tasks,
        run_url=lambda task: f"{url}/run",
        writer=writer,
        parallel=len(tasks),
        timeout_s=30.0,
        summary=summary,
        on_done=lambda: None,
        run_batch=run_batch,
    )
    writer.close()
    return sorted(read_existing(out)[0], key=lambda r: r["_ng_task_index"])


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "_ng_elapsed_s"}
    if out.get("_ng_failure"):  # the transport is named in the message; the kind must agree
        out["_ng_failure"] = out["_ng_failure"]["kind"]
    return out


async def test_batched_rows_are_exactly_the_rows_of_one_run_each(tmp_path: Path) -> None:
    inputs = [f"q{i}" * (i % 5 + 1) for i in range(60)] + ["bad", "boom"]
    state: dict[str, Any] = {}
    async with serve_app(agent_app(state)) as url:
        batched = await run_collection(url, tmp_path, inputs, run_batch=True)
        assert state["runs"] == len(inputs)
        assert 1 <= state["batches"] < 10  # all rows start in one loop turn: few streams
        single = await run_collection(url, tmp_path, inputs, run_batch=False)
    assert state["batches"] < 10 and state["runs"] == 2 * len(inputs)
    assert [comparable(r) for r in batched] == [comparable(r) for r in single]
    by_input = {r["responses_create_params"]["input"]: r for r in batched}
    assert by_input["q3q3q3q3"]["reward"] == 8.0
    assert by_input["bad"]["_ng_failure"]["kind"] == "invalid_input"  # the 422 came through
    assert "bad row" in by_input["bad"]["_ng_failure"]["message"]
    assert by_input["boom"]["_ng_failure"]["kind"] == "agent_error"
    assert sum(r["_ng_status"] == "completed" for r in batched) == 60


async def test_an_agent_without_the_route_gets_one_run_per_row(tmp_path: Path) -> None:
    state: dict[str, Any] = {}
    async with serve_app(agent_app(state, batch=False)) as url:
        rows = await run_collection(url, tmp_path, ["a", "bb", "ccc"], run_batch=True)
    assert [r["reward"] for r in rows] == [1.0, 2.0, 3.0] and state["runs"] == 3


async def test_a_row_past_its_deadline_times_out_and_the_agent_stops_it() -> None:
    state: dict[str, Any] = {}
    async with serve_app(agent_app(state)) as url:
        http = HttpClient()
        batcher = RunBatcher(http, timeout_s=0.5, connect_timeout_s=5.0)
        slow = orjson.dumps({"responses_create_params": {"input": "slow"}})
        fast = orjson.dumps({"responses_create_params": {"input": "ab"}})
        results = await asyncio.gather(
            batcher.run(f"{url}/run", slow), batcher.run(f"{url}/run", fast), return_exceptions=True
        )
        # the agent's deadline answered (its message), not the collector's 5 s later
        assert isinstance(results[0], UpstreamError) and results[0].kind == "timeout"
        assert "POST /run: no answer within its 0.5s deadline" in str(results[0])
        answer = results[1]
        assert not isinstance(answer, BaseException) and answer is not None
        assert answer.status == 200 and answer.json_sync()["reward"] == 2.0
        await asyncio.wait_for(state["cancelled"].wait(), 10)  # the slow row was cancelled
        await batcher.close()
        await http.close()


async def test_a_stream_that_breaks_fails_only_the_rows_still_waiting() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        body = b'{"reward": 1.0}'
        head = orjson.dumps({"i": 1, "status": 200, "length": len(body)})
        await send(
            {"type": "http.response.body", "body": head + b"\n" + body + b"\n", "more_body": True}
        )
        raise RuntimeError("the agent died mid-stream")

    async with serve_app(broken) as url:
        http = HttpClient()
        batcher = RunBatcher(http, timeout_s=30.0, connect_timeout_s=5.0)
        rows = [orjson.dumps({"n": i}) for i in range(3)]
        results = await asyncio.gather(
            *(batcher.run(f"{url}/run", row) for row in rows), return_exceptions=True
        )
        await batcher.close()
        await http.close()
    assert not isinstance(results[1], BaseException) and results[1] is not None
    assert results[1].json_sync() == {"reward": 1.0}
    for failed in (results[0], results[2]):
        assert isinstance(failed, UpstreamError) and failed.kind == "connection", failed


async def test_the_route_rejects_a_batch_without_its_header_and_answers_an_empty_one() -> None:
    state: dict[str, Any] = {}
    async with serve_app(agent_app(state)) as url:
        http = HttpClient()
        bad = await http.request("POST", f"{url}{RUN_BATCH_PATH}", data=b'{"rows": []}')
        empty = await http.request("POST", f"{url}{RUN_BATCH_PATH}", data=b'{"timeout_s": 5}')
        await http.close()
    assert bad.status == 422 and b"timeout_s" in bad.body
    assert empty.status == 200 and empty.body == b"" and state["runs"] == 0


async def test_an_answer_handed_out_is_not_kept_until_its_batch_ends() -> None:
    state: dict[str, Any] = {}
    async with serve_app(agent_app(state)) as url:
        http = HttpClient()
        batcher = RunBatcher(http, timeout_s=30.0, connect_timeout_s=5.0)
        rows = [orjson.dumps({"responses_create_params": {"input": t}}) for t in ("ab", "wait")]
        fast, waiting = (asyncio.create_task(batcher.run(f"{url}/run", r)) for r in rows)
        try:
            answer = await fast
            assert answer is not None and answer.json_sync()["reward"] == 2.0
            handed_out = weakref.ref(answer)
            del answer, fast  # the caller is done with it (the task held its result too)
            await asyncio.sleep(0)  # one loop turn: the loop's own wake-up of us is gone
            gc.collect()
            assert not waiting.done() and state["waiting"].is_set()  # the batch is still open
            assert handed_out() is None  # the stream kept no reference to it
        finally:
            state["release"].set()
        assert (await waiting) is not None
        await batcher.close()
        await http.close()


class KeepingWriter(RowWriter):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.rows: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any], raw: bytes | None = None) -> None:
        self.rows.append(row)
        super().write(row, raw)


async def test_a_collector_worker_keeps_no_finished_row_while_it_runs_the_next(
    tmp_path: Path,
) -> None:
    state: dict[str, Any] = {}
    async with serve_app(agent_app(state)) as url:
        tasks = expand([{"responses_create_params": {"input": t}} for t in ("ab", "wait")], 1)
        writer = KeepingWriter(tmp_path / "out.jsonl")
        run = asyncio.create_task(
            collect(
                tasks,
                run_url=lambda task: f"{url}/run",
                writer=writer,
                parallel=1,  # one worker: it wrote the first row, then sent the second
                timeout_s=30.0,
                summary=summarise([]),
                on_done=lambda: None,
            )
        )
        try:
            await asyncio.wait_for(state["waiting"].wait(), 10)
            assert len(writer.rows) == 1 and writer.rows[0]["reward"] == 2.0
            # referenced only by the writer's list (and getrefcount's argument): 16,384
            # workers each holding their last row held 220 MB
            refs = sys.getrefcount(writer.rows[0])  # outside the assert: pytest keeps its parts
            assert refs == 2
        finally:
            state["release"].set()
        await asyncio.wait_for(run, 10)
        writer.close()
    assert [r["reward"] for r in writer.rows] == [2.0, 4.0]


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
