"""Running rollouts against an agent: bounded concurrency, every result written as it finishes.

``collect`` keeps ``parallel`` rollouts in flight (a fixed pool of workers pulling from a queue,
so ten thousand rows never become ten thousand pending coroutines), posts each row to the
agent's ``/run``, and appends the row it gets back. Anything that goes wrong becomes a failed
row: an agent that answers an error status, times out or cannot be reached is recorded with
``_ng_status: "failed"`` and a ``_ng_failure`` kind, never dropped or scored 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from nemo_gym.core.errors import UpstreamError
from nemo_gym.rollouts.inputs import Task
from nemo_gym.rollouts.output import RowWriter
from nemo_gym.rollouts.records import FAILURE_KEY, ROW_SCHEMA_VERSION, STATUS_KEY, failure_info
from nemo_gym.rollouts.summary import RunSummary
from nemo_gym.server.http_client import NO_RETRY, HttpClient


def _failed(task: Task, kind: str, message: str, started: float) -> dict[str, Any]:
    return {
        **task.row,
        "response": None,
        "reward": None,
        "_ng_schema_version": ROW_SCHEMA_VERSION,
        STATUS_KEY: "failed",
        FAILURE_KEY: failure_info(kind, message),
        "_ng_elapsed_s": round(time.monotonic() - started, 4),
    }


async def run_one(
    http: HttpClient, run_url: str, task: Task, timeout_s: float
) -> tuple[dict[str, Any], bytes | None]:
    """Run one rollout; always return its row (failed rows included).

    Returns:
        The row, and the agent's body when it can be written to the output as it is (a Gym
        agent's complete single-line row), which saves serialising the row again.
    """
    started = time.monotonic()
    try:
        resp = await http.request(
            "POST", run_url, json=task.row, timeout_s=timeout_s, retry=NO_RETRY
        )
    except UpstreamError as exc:
        kind = "timeout" if exc.kind == "timeout" else "agent_error"
        return _failed(task, kind, str(exc), started), None
    if not resp.ok:
        return _failed(
            task,
            "agent_error",
            f"agent answered HTTP {resp.status}: {resp.body[:2000].decode(errors='replace')}",
            started,
        ), None
    try:
        row = resp.json_sync()
    except ValueError as exc:
        return _failed(task, "agent_error", f"agent answered invalid JSON: {exc}", started), None
    if not isinstance(row, dict):
        return _failed(
            task, "agent_error", "agent answered something other than an object", started
        ), None
    if STATUS_KEY in row and "_ng_task_index" in row and b"\n" not in resp.body:
        return row, resp.body
    row.setdefault("_ng_task_index", task.task_index)
    row.setdefault("_ng_repeat_index", task.repeat_index)
    row.setdefault("_ng_schema_version", ROW_SCHEMA_VERSION)
    if STATUS_KEY not in row:  # an agent written for NeMo Gym: its row is a verify response
        ok = isinstance(row.get("reward"), (int, float))
        row[STATUS_KEY] = "completed" if ok else "failed"
        row[FAILURE_KEY] = None if ok else failure_info("verifier_error", "no numeric reward")
    return row, None


async def collect(
    tasks: list[Task],
    *,
    run_url: str,
    writer: RowWriter,
    parallel: int,
    timeout_s: float,
    summary: RunSummary,
    on_done: Callable[[], None],
) -> None:
    """Run every task with at most ``parallel`` in flight, writing each row as it finishes."""
    queue: asyncio.Queue[Task] = asyncio.Queue()
    for task in tasks:
        queue.put_nowait(task)
    http = HttpClient(timeout_s=timeout_s, limit=parallel + 8, limit_per_host=parallel + 8)

    async def worker() -> None:
        while True:
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            row, raw = await run_one(http, run_url, task, timeout_s)
            writer.write(row, raw)
            summary.add(row)
            on_done()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(parallel, len(tasks))):
                group.create_task(worker())
    finally:
        await http.close()
