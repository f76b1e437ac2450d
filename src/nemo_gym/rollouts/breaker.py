"""The collector's circuit breaker: pause while a server is down instead of failing rollouts.

When a server dies mid-run (``ng_run`` restarts it, see ``nemo_gym.supervisor.restarts``), every
rollout that needs it fails within milliseconds; without a breaker the collector would write the
rest of the dataset as failed rows in seconds. ``collect`` (``collect.py``) asks
:meth:`ServerBreaker.is_down` after each failed rollout: the breaker probes every server's
``/health`` (one probe shared by all failures of the same moment, and none again for
``recheck_s`` after a healthy answer). When a server does not answer, the breaker opens: the
failed rollout is put back in the queue instead of being written, every worker waits in
:meth:`ServerBreaker.wait_closed` before taking a task, and one watcher probes with backoff until
every server answers again. A failure while all servers are healthy is the rollout's own and is
written as usual, unless a server restarted after the rollout began (its ``/health`` uptime is
shorter than the rollout): ``ng_run`` restarts a killed server on its kept-open socket within a
second or two, often before the probe, and the rollout failed because of it, so it is run again
too. A server that stays down longer than ``max_down_s`` ends the collection with
:class:`ServersDown`; the rollouts not run are left for ``+resume=true``.

The clock and the sleep are injectable so the unit tests step time instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from nemo_gym.core.errors import GymError, UpstreamError
from nemo_gym.server.http_client import NO_RETRY, HttpClient

logger = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[Mapping[str, float | None]]]
"""Each server's start time on the caller's ``time.monotonic`` clock; ``None`` when it does not
answer (``-inf`` when it answers but says nothing of its start)."""


class ServersDown(GymError):
    """Servers stayed down longer than the breaker waits; the collection stops."""


class ServerBreaker:
    """Tells a rollout's own failure from "a server is down", and pauses the latter.

    Args:
        probe: lists the servers that are down.
        max_down_s: how long the servers may stay down before :class:`ServersDown`.
        recheck_s: after a healthy probe, failures within this many seconds are the rollouts'
            own without probing again (a thousand failures cost one probe).
        poll_min_s, poll_max_s: the watcher's backoff between probes while open.
    """

    def __init__(
        self,
        probe: Probe,
        *,
        max_down_s: float = 600.0,
        recheck_s: float = 1.0,
        poll_min_s: float = 0.25,
        poll_max_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._probe = probe
        self.max_down_s = max_down_s
        self.recheck_s = recheck_s
        self.poll_min_s, self.poll_max_s = poll_min_s, poll_max_s
        self._clock, self._sleep = clock, sleep
        self._closed = asyncio.Event()
        self._closed.set()
        self._lock = asyncio.Lock()
        self._last_healthy: float | None = None
        self._started: Mapping[str, float | None] = {}
        self._gave_up: ServersDown | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.down: list[str] = []
        self.pauses = 0

    @property
    def is_open(self) -> bool:
        """True while collection is paused."""
        return not self._closed.is_set()

    async def wait_closed(self) -> None:
        """Return when no server is known to be down; raise :class:`ServersDown` if given up."""
        await self._closed.wait()
        if self._gave_up is not None:
            raise self._gave_up

    async def is_down(self, since: float | None = None) -> bool:
        """After a failed rollout that began at ``since`` (``time.monotonic``): was a server
        down, or has one restarted since (so the rollout should be run again)?"""
        if self.is_open:
            return True
        async with self._lock:
            if self.is_open:
                return True
            now = self._clock()
            if self._last_healthy is None or now - self._last_healthy >= self.recheck_s:
                started = await self._probe()
                down = [name for name, at in started.items() if at is None]
                if down:
                    self._open(down)
                    return True
                self._last_healthy, self._started = self._clock(), started
        if since is None:
            return False
        restarted = [n for n, at in self._started.items() if at is not None and at > since]
        if restarted:
            logger.warning("%s restarted during a rollout: it runs again", ", ".join(restarted))
        return bool(restarted)

    def _open(self, down: list[str]) -> None:
        self.down = down
        self.pauses += 1
        self._closed.clear()
        logger.warning("%s not answering: collection paused until it is back", ", ".join(down))
        self._watcher = asyncio.create_task(self._watch(self._clock()))

    async def _watch(self, opened_at: float) -> None:
        delay = self.poll_min_s
        while True:
            await self._sleep(delay)
            started = await self._probe()
            down = [name for name, at in started.items() if at is None]
            waited = self._clock() - opened_at
            if not down:
                logger.warning("servers answering again after %.1f s: collection resumed", waited)
                self._last_healthy, self._started = self._clock(), started
                self.down = []
                self._closed.set()
                return
            if waited >= self.max_down_s:
                self._gave_up = ServersDown(
                    f"{', '.join(down)} did not answer for {waited:.0f} s; collection stopped "
                    "(add +resume=true to the same command to run the rest)"
                )
                self.down = down
                self._closed.set()
                return
            delay = min(delay * 2, self.poll_max_s)

    async def close(self) -> None:
        """Stop the watcher, if one runs."""
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
            try:
                await self._watcher
            except asyncio.CancelledError:
                pass


def health_probe(http: HttpClient, servers: Mapping[str, str], timeout_s: float = 5.0) -> Probe:
    """A probe that GETs ``/health`` of every server in ``servers`` (name -> base URL).

    A server that does not answer within ``timeout_s`` counts as down: a restarting server's
    kept-open socket accepts the connection but answers only when the new process serves. The
    deadline is generous because an alive server with 16k rollouts in flight answers slowly (a
    2 s deadline paused such a run for 18 s with nothing down); a false pause loses nothing.
    """

    async def one(url: str) -> float | None:
        try:
            resp = await http.request("GET", url + "/health", timeout_s=timeout_s, retry=NO_RETRY)
        except UpstreamError:
            return None
        if not resp.ok:
            return None
        # Started `uptime` before the answer left it (which is just before it arrived here): a
        # restarting server that answers seconds after the probe was sent is still seen as new.
        try:
            return time.monotonic() - float(resp.json_sync()["uptime_seconds"])
        except (ValueError, KeyError, TypeError):
            return float("-inf")

    async def probe() -> dict[str, float | None]:
        results = await asyncio.gather(*(one(url) for url in servers.values()))
        return dict(zip(servers, results, strict=True))

    return probe
