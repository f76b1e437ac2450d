"""When an agent starts the rows of its ``/run_batch`` requests: as fast as their calls go out.

A collector with 16,384 rollouts in flight hands them all to the agent at once. When the model
server is the bottleneck (its connections all busy), most of those rollouts would wait inside
the agent for a connection, each holding what a running ``/run`` holds: about 28 coroutine
frames through the app's middleware and route, the parsed row, timers. 14,700 of them held
about 370 MB (25 KB each); a row that has not started costs only its bytes.

So a row starts only while the running rows that hold no outbound connection are fewer than
``max_idle``: ``running < in use + max_idle``, with the agent's
:class:`~nemo_gym.server.call_slots.CallSlots` counting the calls that hold a connection. When
every connection is busy, rows start as connections are taken, so the upstream stays as busy as
before and only where rows wait changes; when nothing queues, rows start at once. Rows start in
arrival order, and a row's wait here counts in its deadline (``server.run_batch``).

A row between calls, in a tool that runs in the agent itself, or backing off before a retry
holds no connection: at most ``max_idle`` such rows run at a time, the rest wait to start. An
agent none of whose calls has gone through Gym's client yet (one that calls its model with its
own aiohttp session or SDK client, which this count cannot see) is not held back at all.

Neighbours: ``server.run_batch`` (runs each row inside :meth:`RowAdmission.admitted`),
``server.call_slots``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nemo_gym.server.call_slots import CallSlots

#: Running rows allowed without an outbound connection. Enough to keep every connection busy
#: while rows move between calls (milliseconds each; a 2 s model with 1,666 connections frees
#: about 800 a second) and for rows that run tools in the agent, at about 25 KB each.
MAX_IDLE = 1024


class RowAdmission:
    """Starts batch rows in arrival order while ``running < slots.in_use + max_idle``.

    Args:
        slots: the agent's outbound call slots (its ``HttpClient.slots``).
        max_idle: running rows allowed to hold no outbound connection.
    """

    def __init__(self, slots: CallSlots, max_idle: int = MAX_IDLE) -> None:
        self.slots = slots
        self.max_idle = max_idle
        self.running = 0  # rows let in and not finished (counted from when they are let in)
        self._waiting: deque[asyncio.Future[None]] = deque()
        slots.add_listener(self._let_in)

    @property
    def waiting(self) -> int:
        """Rows waiting to start."""
        return sum(not turn.done() for turn in self._waiting)

    def _room(self) -> int:
        if not self.slots.taken:  # no call seen: nothing to pace the rows by
            return 1
        return self.slots.in_use + self.max_idle - self.running

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Wait for this row's turn (at once while there is room and nobody waits), run it."""
        if self._waiting or self._room() <= 0:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            self._let_in()  # the turns ahead may all have been cancelled
            try:
                await turn  # _let_in counted this row as running when it set the result
            except asyncio.CancelledError:
                if not turn.cancelled():
                    self._finished()  # let in, then cancelled before it ran
                raise  # a cancelled turn stays queued; _let_in drops it
        else:
            self.running += 1
        try:
            yield
        finally:
            self._finished()

    def _finished(self) -> None:
        self.running -= 1
        self._let_in()

    def _let_in(self) -> None:
        while self._waiting and self._room() > 0:
            turn = self._waiting.popleft()
            if not turn.done():
                self.running += 1
                turn.set_result(None)
