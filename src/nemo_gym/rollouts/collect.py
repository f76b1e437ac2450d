"""Running rollouts against an agent: bounded concurrency, every result written as it finishes.

``collect`` keeps ``parallel`` rollouts in flight (a fixed pool of workers pulling from a queue,
so ten thousand rows never become ten thousand pending coroutines), posts each row to the
agent's ``/run`` (or, with other rows, in one of its ``/run_batch`` streams: ``batching``),
and appends the row it gets back. Anything that goes wrong becomes a failed
row: an agent that answers an error status, times out or cannot be reached is recorded with
``_ng_status: "failed"`` and a ``_ng_failure`` kind, never dropped or scored 0.

With a ``ServerBreaker`` (``breaker.py``), a rollout that failed while a server was down is run
again once the server answers (at most ``MAX_REQUEUES`` times) instead of being written. Given
the servers' ``/health`` URLs, the workers pass the concurrency governor's gate
(``governor.py``): fewer rollouts are in flight while an upstream throttles, and a rollout that
failed calling the model meanwhile is run again instead of written.

A ``/run`` whose connection was never made (the agent did not accept it within the connect
timeout while thousands of others were connecting) is tried again (``RUN_RETRY``): the row was
never sent, so it cannot run twice. A call that may have reached the agent is never repeated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from nemo_gym.core.errors import UpstreamError
from nemo_gym.core.memory import release_free_heap
from nemo_gym.rollouts.batching import RunBatcher
from nemo_gym.rollouts.breaker import ServerBreaker
from nemo_gym.rollouts.governor import Admission
from nemo_gym.rollouts.inputs import PackedTask, Task
from nemo_gym.rollouts.output import RowWriter
from nemo_gym.rollouts.records import RolloutFailure, failed_row, failure_info
from nemo_gym.rollouts.row import (
    FAILURE_KEY,
    ROW_SCHEMA_VERSION,
    STATUS_KEY,
    FailedKind,
    row_status,
)
from nemo_gym.rollouts.summary import RunSummary
from nemo_gym.server.http_client import HttpClient, RetryPolicy, open_files_budget
from nemo_gym.server.retry_budget import RetryBudget

logger = logging.getLogger(__name__)

#: How many times one rollout is put back because a server was down when it failed.
MAX_REQUEUES = 3
#: A refused connection fails at once; a connect that takes long is a queue: the agent's
#: accept queue (``net.core.somaxconn``, often 4096) overflowed while thousands of rollouts
#: connected at once, and the kernel resends the dropped handshakes after 1, 2, 4, 8... s.
RUN_CONNECT_TIMEOUT_S = 60.0
#: ``/run`` is retried only when the connection was never made (never sent, never run).
RUN_RETRY = RetryPolicy(
    max_attempts=4, backoff_base_s=0.5, retry_statuses=frozenset(), retry_after_sent=False
)


async def run_one(
    http: HttpClient,
    run_url: str,
    task: Task | PackedTask,
    timeout_s: float,
    batcher: RunBatcher | None = None,
) -> tuple[dict[str, Any], bytes | None]:
    """Run one rollout; always return its row (failed rows included). With ``batcher``, the
    row goes in a ``/run_batch`` stream when the agent has one.

    Returns:
        The row, and the agent's body when it can be written to the output as it is (a Gym
        agent's complete single-line row), which saves serialising the row again.
    """
    started = time.monotonic()

    def failed(kind: FailedKind, message: str) -> tuple[dict[str, Any], None]:
        return failed_row(task.row, RolloutFailure(kind, message), started), None

    try:
        resp = await batcher.run(run_url, task.body) if batcher is not None else None
        if resp is None:
            resp = await http.request(
                "POST",
                run_url,
                data=task.body,
                headers={"Content-Type": "application/json"},
                timeout_s=timeout_s,
                retry=RUN_RETRY,
            )
    except UpstreamError as exc:
        return failed("timeout" if exc.kind == "timeout" else "agent_error", str(exc))
    if not resp.ok:
        text = resp.body[:2000].decode(errors="replace")
        # 4xx: the agent refused the row itself (bad data); 5xx: the agent failed.
        kind: FailedKind = "invalid_input" if 400 <= resp.status < 500 else "agent_error"
        return failed(kind, f"agent answered HTTP {resp.status}: {text}")
    try:
        row = resp.json_sync()
    except ValueError as exc:
        return failed("agent_error", f"agent answered invalid JSON: {exc}")
    if not isinstance(row, dict):
        return failed("agent_error", "agent answered something other than an object")
    if STATUS_KEY in row and "_ng_task_index" in row and b"\n" not in resp.body:
        return row, resp.body
    for key, value in task.row.items():  # Gym's ids, which an agent may not echo back
        if key.startswith("_ng_"):
            row.setdefault(key, value)
    row.setdefault("_ng_task_index", task.task_index)
    row.setdefault("_ng_repeat_index", task.repeat_index)
    row.setdefault("_ng_schema_version", ROW_SCHEMA_VERSION)
    if STATUS_KEY not in row:  # an agent written for NeMo Gym: its row is a verify response
        _complete_foreign_row(row, started)
    return row, None


def _complete_foreign_row(row: dict[str, Any], started: float) -> None:
    """Add Gym's status keys to a row from an agent that writes none (status by ``row_status``).

    A row without a numeric reward is failed: its reward becomes ``null`` and the value it had
    is quoted in the failure message, so nothing is silently scored.
    """
    status = row[STATUS_KEY] = row_status(row)
    if status == "failed":
        message = f"the agent's row has no numeric reward (reward: {row.get('reward')!r:.200})"
        row["reward"] = None
        row[FAILURE_KEY] = failure_info("verifier_error", message)
    else:
        row[FAILURE_KEY] = None
    row.setdefault("_ng_num_steps", None)
    row.setdefault("_ng_elapsed_s", round(time.monotonic() - started, 4))


async def collect(
    tasks: Sequence[Task | PackedTask],
    *,
    run_url: Callable[[PackedTask], str],
    writer: RowWriter,
    parallel: int,
    timeout_s: float,
    summary: RunSummary,
    on_done: Callable[[], None],
    breaker: ServerBreaker | None = None,
    health_urls: list[str] | None = None,
    run_batch: bool = True,
) -> None:
    """Run every task with at most ``parallel`` in flight, writing each row as it finishes.

    With ``run_batch`` (the default) rows go to agents that have ``/run_batch`` in shared
    streams (``batching``), so thousands in flight need few connections; without it, or for an
    agent without the route, every row is one ``/run`` request and connection.

    ``run_url`` gives the ``/run`` URL of the agent a task goes to. Tasks wait packed
    (``PackedTask``): pass them packed to keep their parsed rows out of memory altogether.
    With ``breaker``, failures while a server is down pause the run and are run again (see
    the module docstring); ``health_urls`` (the servers' ``/health``) turn the concurrency
    governor on.
    """
    queue: asyncio.Queue[PackedTask] = asyncio.Queue()
    for task in tasks:
        queue.put_nowait(task if isinstance(task, PackedTask) else task.packed())
    files = open_files_budget(1.0)
    connections = max(1, min(parallel, files - 64))  # a few files stay for the output
    if connections < parallel and not run_batch:
        logger.warning(
            "%d rollouts in flight need as many open connections, but this process may open "
            "%d files (ulimit -n); %d will be in flight",
            parallel,
            files,
            connections,
        )
        parallel = connections
    http = HttpClient(
        timeout_s=timeout_s,
        connect_timeout_s=RUN_CONNECT_TIMEOUT_S,
        limit=connections + 8,
        limit_per_host=connections + 8,
        # Every /run may use its retries: they are only for connections never made, bounded
        # by RUN_RETRY's attempts (a window-wide budget failed thousands of rows whose
        # handshakes were dropped together when 16,384 rollouts started at once).
        budget=RetryBudget(ratio=float(RUN_RETRY.max_attempts - 1)),
    )
    batcher = RunBatcher(http, timeout_s, RUN_CONNECT_TIMEOUT_S) if run_batch else None
    admission = Admission(parallel)
    requeued: dict[tuple[int, int], int] = {}

    async def server_was_down(task: PackedTask, row: dict[str, Any], began: float) -> bool:
        if breaker is None or row.get(STATUS_KEY) != "failed":
            return False
        failure = row.get(FAILURE_KEY)
        if isinstance(failure, dict) and failure.get("kind") == "invalid_input":
            return False
        if requeued.get(task.key, 0) >= MAX_REQUEUES or not await breaker.is_down(began):
            return False
        requeued[task.key] = requeued.get(task.key, 0) + 1
        return True

    async def worker() -> None:
        while True:
            if breaker is not None:
                await breaker.wait_closed()
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await admission.gate.enter()
            try:  # the slot is held until the verdict: a storm is probed once a tick
                mark = admission.mark()
                began = time.monotonic()
                row, raw = await run_one(http, run_url(task), task, timeout_s, batcher)
                # a server down is asked first: the governor's verdict takes a tick, by which
                # time ng_run may have restarted the server
                again = await server_was_down(task, row, began) or await admission.run_again(
                    row, mark, task.key
                )
            finally:
                admission.gate.leave()
            if again:
                queue.put_nowait(task)
                continue
            writer.write(row, raw)
            summary.add(row)
            on_done()
            # not kept while this worker waits for its next rollout: 16,384 workers each
            # holding their last row held 220 MB
            del row, raw

    watcher = asyncio.create_task(admission.watch(http, health_urls)) if health_urls else None
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(parallel, len(tasks))):
                group.create_task(worker())
    finally:
        if watcher is not None:
            watcher.cancel()
        if breaker is not None:
            await breaker.close()
        if batcher is not None:
            await batcher.close()
            logger.info("%d /run_batch streams carried the rows", batcher.streams_opened)
        await http.close()
        release_free_heap()  # the rollouts' memory, before the run's metrics (core.memory)
    if admission.requeued:
        logger.warning(
            "%d rollouts failed while the upstream throttled and were run again (%d runs)",
            len(admission.requeued),
            sum(admission.requeued.values()),
        )
