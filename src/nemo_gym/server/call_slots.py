"""The outbound calls a process may have in flight per upstream, and the queue of those waiting.

:class:`~nemo_gym.server.http_client.HttpClient` takes a slot here before each attempt and gives
it back after, so that a call beyond ``limit_per_host`` waits here holding no request object, and
its wait is known: a failure says how long it queued, and a deadline that passed in the queue is
never reported as the upstream being slow. How many calls hold a slot is public
(:attr:`CallSlots.in_use`, and :attr:`CallSlots.queued` those waiting), and listeners hear every
time a call takes one: ``server.admission`` uses both to start an agent's batch rows only as fast
as their calls can go out. Neighbours: ``server.http_client`` (the only one taking slots).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nemo_gym.core.errors import UpstreamError

#: A call's slots: its upstream's and one of the total.
Held = tuple[asyncio.Semaphore, asyncio.Semaphore]


class CallSlots:
    """``limit_per_host`` slots per upstream (``host:port``), ``limit`` in all, and a count of
    calls waiting.

    Both limits are kept here, first come first served, and aiohttp's pool has none: when
    aiohttp kept the total, a call woken for a freed connection lost it to a new call for
    another upstream, and an agent's ``/verify`` calls waited behind model calls for 80 s.

    Args:
        limit_per_host: calls in flight to one upstream; more wait in :meth:`acquire`.
        limit: calls in flight in all.
    """

    def __init__(self, limit_per_host: int, limit: int) -> None:
        self.limit_per_host = limit_per_host
        self.limit = limit
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._total: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the semaphores belong to
        self._queued = 0
        self._in_use = 0
        self._taken = 0
        self._listeners: list[Callable[[], None]] = []

    @property
    def queued(self) -> int:
        """Calls waiting for a slot, over every upstream."""
        return self._queued

    @property
    def in_use(self) -> int:
        """Calls holding a slot, over every upstream."""
        return self._in_use

    @property
    def taken(self) -> int:
        """Slots ever taken: 0 while no call has gone out through this client."""
        return self._taken

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` each time a call takes a slot."""
        self._listeners.append(listener)

    def clear(self) -> None:
        """Forget the semaphores (the client closed; a new loop may use it next)."""
        self._slots.clear()
        self._total = None

    def _slot(self, upstream: str) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._total is None:  # first use, or a new event loop
            self._slots, self._loop = {}, loop
            self._total = asyncio.Semaphore(self.limit)
        slot = self._slots.get(upstream)
        if slot is None:
            slot = self._slots[upstream] = asyncio.Semaphore(self.limit_per_host)
        return slot

    async def acquire(self, upstream: str, deadline: float, what: str) -> tuple[float, Held]:
        """Take a slot for ``upstream`` and one of the total, waiting until ``deadline``.

        Returns:
            The seconds waited, and what to give to :meth:`release` (the semaphores taken, so
            that a release after :meth:`clear` gives back what was taken).

        Raises:
            UpstreamError: (``timeout``) the deadline passed in the queue; says so.
        """
        slot = self._slot(upstream)
        total = self._total
        assert total is not None  # made with the upstream's slot
        if not slot.locked() and not total.locked():
            await slot.acquire()  # both free: return at once
            await total.acquire()
            self._took()
            return 0.0, (slot, total)
        loop = asyncio.get_running_loop()
        queued = loop.time()
        self._queued += 1
        holding = False
        try:
            async with asyncio.timeout_at(deadline):
                await slot.acquire()
                holding = True
                await total.acquire()  # per upstream first: no call waits holding both
        except TimeoutError:
            if holding:
                slot.release()
            busy = (
                f"{self.limit_per_host} connections to {upstream}"
                if not holding
                else f"{self.limit} connections (to every upstream)"
            )
            raise UpstreamError(
                f"{what}: not sent; its deadline passed after {loop.time() - queued:.1f}s "
                f"waiting for one of this process's {busy} (all busy)",
                kind="timeout",
            ) from None
        except BaseException:
            if holding:
                slot.release()
            raise
        finally:
            self._queued -= 1
        self._took()
        return loop.time() - queued, (slot, total)

    def release(self, held: Held) -> None:
        """Give back the slots :meth:`acquire` took."""
        slot, total = held
        total.release()
        slot.release()
        self._in_use -= 1

    def _took(self) -> None:
        self._in_use += 1
        self._taken += 1
        for listener in self._listeners:
            listener()
