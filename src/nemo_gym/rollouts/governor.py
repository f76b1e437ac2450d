"""The run-wide concurrency governor: fewer rollouts in flight while an upstream throttles.

Where the signal comes from. Model calls reach the upstream API from the model server (called
by the agent, called by the collector), so the collector never sees a 429 itself: the agent
turns a model server's final 429 into a failed row. Instead every Gym server's pooled HTTP
client counts the answers it gets from upstream APIs and how many were *throttling* (429, or
503 with ``Retry-After``; ``server.retry_budget.UpstreamCounts``), and ``GET /health`` reports
them as ``upstream``. The collector polls ``/health`` of every server instance once per tick
(``TICK_S``: a few tiny GETs a second, whatever the number of rollouts) and feeds the summed
increase to :class:`Governor`. Calls between Gym servers are not counted (they retry no
status), so a 429 relayed by a model server to its agent is counted once, where it happened.
Servers without the counts (another framework's) are skipped.

The rule (AIMD, one decision per tick, pure and deterministic):

* a tick whose upstream answers were at least ``threshold`` (half) throttling is a *throttled
  tick*: the limit is multiplied by ``1 - share * (1 - decrease)``, down to ``floor``: halved
  when every answer was a 429, cut by a quarter when half were (as DCTCP scales its cut by the
  share of marked packets, so a noisy 50% does not pin the run to the floor);
* a tick with answers, fewer of them throttling, raises the limit by ``step``, up to
  ``ceiling`` (``num_samples_in_parallel``);
* a tick without answers changes nothing.

A share rather than any 429: random 429s that retries absorb (25% of calls) are the retry
loop's business, and halving on each of them would hold a healthy run at the floor; an upstream
that refuses most of what it is sent is throttling, and more calls only make it worse.

A rollout that failed with a ``model_error`` while a throttled tick happened is not written:
it goes back to the queue (at most ``max_requeues`` times) and waits for the :class:`Gate`, so
that throughput gives way during a 429 storm instead of rows. :class:`Gate` is the resizable
admission gate; :class:`Admission` bundles it with the polling loop and the requeue verdict.
Neighbours: ``collect.py`` (the workers), ``server.retry_budget`` (the counts).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from nemo_gym.core.errors import UpstreamError
from nemo_gym.rollouts.row import FAILURE_KEY, STATUS_KEY
from nemo_gym.server.http_client import NO_RETRY, HttpClient
from nemo_gym.server.retry_budget import UpstreamCounts

logger = logging.getLogger(__name__)

#: Seconds between two polls of the servers' counts (one governor decision each).
TICK_S = 0.5


@dataclass
class Governor:
    """The AIMD rule (see the module docstring); ``limit`` is the rollouts allowed in flight."""

    ceiling: int
    floor: int = 1
    step: int = 1
    threshold: float = 0.5
    decrease: float = 0.5
    max_requeues: int = 3
    limit: int = 0
    throttled_ticks: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.ceiling:
            raise ValueError(f"floor {self.floor} must be within 1..ceiling {self.ceiling}")
        if not 0 < self.decrease < 1 or not 0 < self.threshold <= 1 or self.step < 1:
            raise ValueError("decrease in (0, 1), threshold in (0, 1], step >= 1")
        self.limit = self.limit or self.ceiling

    @classmethod
    def for_parallel(cls, parallel: int) -> Governor:
        """Defaults for ``parallel`` in flight: floor 1/64 of it (at least 1), and a step of
        1/16 of it (at least 1), so the whole range is regained in 16 healthy ticks."""
        return cls(ceiling=parallel, floor=max(1, parallel // 64), step=max(1, parallel // 16))

    def observe(self, answers: int, throttled: int) -> int:
        """One tick: ``answers`` upstream answers since the last, ``throttled`` of them
        throttling. Returns the new limit."""
        if answers <= 0:
            return self.limit
        if throttled >= self.threshold * answers:
            self.throttled_ticks += 1
            share = min(1.0, throttled / answers)
            self.limit = max(self.floor, int(self.limit * (1 - share * (1 - self.decrease))))
        else:
            self.limit = min(self.ceiling, self.limit + self.step)
        return self.limit

    def should_requeue(self, row: Mapping[str, Any], ticks_at_start: int, requeues: int) -> bool:
        """Whether a finished rollout is run again instead of written: it failed calling the
        model (``model_error``) while the upstream throttled, and has requeues left."""
        failure = row.get(FAILURE_KEY)
        return (
            row.get(STATUS_KEY) == "failed"
            and isinstance(failure, Mapping)
            and failure.get("kind") == "model_error"
            and self.throttled_ticks > ticks_at_start
            and requeues < self.max_requeues
        )


class Gate:
    """At most ``limit`` holders at once, admitted first come, first served; the limit may
    change while holders are inside (a lower one lets no one in until enough have left)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(admitted)
        try:
            await admitted  # whoever admits us counts us in ``active``
        except asyncio.CancelledError:
            if admitted.done() and not admitted.cancelled():
                self.leave()  # admitted, then cancelled before we could use it
            raise

    def leave(self) -> None:
        self.active -= 1
        self._admit()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._admit()

    def _admit(self) -> None:
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                self.active += 1


async def _counts(http: HttpClient, url: str) -> UpstreamCounts | None:
    try:
        resp = await http.request("GET", url, timeout_s=2.0, retry=NO_RETRY)
        body = resp.json_sync() if resp.ok else None
    except (UpstreamError, ValueError):
        return None  # down or restarting: the next tick will see it
    if not isinstance(body, dict) or not isinstance(body.get("upstream"), dict):
        return None
    try:
        return UpstreamCounts.model_validate(body["upstream"])
    except ValidationError:
        return None


class Admission:
    """The collector's side of the governor: the gate its workers pass, the watcher that
    resizes it, and the verdict on a rollout that failed calling the model.

    A model server counts a throttling answer before it answers its agent, so a poll begun
    after a failed row came back has seen why it failed: :meth:`run_again` waits for that poll
    (about one tick, only for rows that failed calling the model). The collector holds the
    rollout's slot meanwhile, so that at the floor a storm is probed about once a tick instead
    of by rollouts failing in a tight loop.
    """

    def __init__(self, parallel: int, tick_s: float = TICK_S) -> None:
        self.governor = Governor.for_parallel(parallel)
        self.gate = Gate(self.governor.limit)
        self.tick_s = tick_s
        self.requeued: dict[Hashable, int] = {}  # task key -> times run again
        self._begun = self._done = 0  # polls begun and observed
        self._ticked = asyncio.Event()
        self._watching = False

    def mark(self) -> int:
        """Taken when a rollout starts, handed to :meth:`run_again` when it ends."""
        return self.governor.throttled_ticks

    async def run_again(self, row: Mapping[str, Any], mark: int, key: Hashable) -> bool:
        """Whether the rollout with ``row`` goes back to the queue (see the module docstring)."""
        failure = row.get(FAILURE_KEY)
        if not isinstance(failure, Mapping) or failure.get("kind") != "model_error":
            return False
        target = self._begun + 1
        while self._watching and self._done < target:
            self._ticked.clear()
            await self._ticked.wait()
        times = self.requeued.get(key, 0)
        if not self.governor.should_requeue(row, mark, times):
            return False
        self.requeued[key] = times + 1
        return True

    async def watch(self, http: HttpClient, urls: list[str]) -> None:
        """Poll the servers' counts every tick and resize the gate as the governor decides
        (until cancelled). A server whose counts went down restarted: its counts are new."""
        last: dict[str, UpstreamCounts] = {}
        self._watching = True
        try:
            while True:
                await asyncio.sleep(self.tick_s)
                self._begun += 1
                polled = await asyncio.gather(*(_counts(http, u) for u in urls))
                answers, throttled = _increase(last, dict(zip(urls, polled, strict=True)))
                self._observe(answers, throttled)
                self._done += 1
                self._ticked.set()
        finally:
            self._watching = False
            self._ticked.set()

    def _observe(self, answers: int, throttled: int) -> None:
        previous = self.governor.limit
        limit = self.governor.observe(answers, throttled)
        if limit < previous:
            logger.warning(
                "upstream throttling (%d of %d answers): at most %d rollouts in flight",
                throttled,
                answers,
                limit,
            )
        elif limit > previous:
            logger.info("at most %d rollouts in flight", limit)
        self.gate.resize(limit)


def _increase(
    last: dict[str, UpstreamCounts], polled: dict[str, UpstreamCounts | None]
) -> tuple[int, int]:
    """Answers and throttling answers since ``last`` (updated); a first look counts nothing."""
    answers = throttled = 0
    for url, counts in polled.items():
        if counts is None:
            continue
        before = last.get(url)
        last[url] = counts
        if before is None:
            continue  # what came before this run is not counted
        if counts.answers < before.answers:
            before = UpstreamCounts()
        answers += counts.answers - before.answers
        throttled += counts.throttled - before.throttled
    return answers, throttled
