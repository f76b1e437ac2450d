"""Calling an instance that runs as several replicas: which replica gets a call.

An instance placed on a Ray cluster (``config.placement``) has replicas whose addresses are
known only once they run: each registers a :class:`ReplicaInfo` with the head server
(``POST /replicas``), again after Ray restarted it. :class:`ReplicaSet` reads that table
(``GET /replicas``, cached for ``refresh_s``) and picks the replica for each call: the one with
the fewest calls in flight from this process (then the fewest served, so that sequential calls
take turns). Every call of one rollout (one session id, the ``X-Gym-Session`` header or the
``gym_session`` cookie, see ``sessions``) to a *resources server* goes to the replica its first
call went to, since the rollout's state lives there. When that replica is gone (its address is
no longer registered, or it refuses connections), the rollout's call fails at once with an
:class:`~nemo_gym.core.errors.UpstreamError` that says so: the agent records the rollout as
failed, and ``+resume=true`` runs it again. It never waits for a replica that will not return.

Neighbours: ``head.client.ServerClient`` leases a URL here for each call; ``head.app`` keeps
the table; ``ray_support.actors`` registers the replicas.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter

from nemo_gym.config.instances import instance_section
from nemo_gym.config.placement import is_placed
from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.http_client import HttpClient, RetryPolicy
from nemo_gym.server.sessions import SESSION_COOKIE, SESSION_HEADER

#: Rollouts whose replica is remembered, per process (the oldest are forgotten first).
MAX_PINNED_SESSIONS = 200_000


#: Seconds a replica whose connection failed is passed over by new rollouts.
REFUSED_HOLD_S = 30.0


class ReplicaInfo(BaseModel):
    """One replica of an instance, as it registers with the head server."""

    instance: str
    replica: int
    url: str
    host: str
    port: int
    pid: int
    node_id: str
    node_ip: str
    actor_pid: int
    start_time: float


_TABLE = TypeAdapter(list[ReplicaInfo])


def session_of(headers: Mapping[str, str] | None, cookies: Mapping[str, str] | None) -> str | None:
    """The rollout's session id a call carries, if any."""
    for key, value in (headers or {}).items():
        if key.lower() == SESSION_HEADER:
            return value
    return (cookies or {}).get(SESSION_COOKIE)


class ReplicaSet:
    """Replica tables of the placed instances of one run, and the calls in flight to each.

    Args:
        config: the run's resolved config (names the placed instances and the head server).
        http: the client that reads the head server's table.
        refresh_s: how long a table is used before it is read again.
    """

    def __init__(self, config: Mapping[str, Any], http: HttpClient, refresh_s: float = 2.0) -> None:
        self._config = config
        self._http = http
        self._refresh_s = refresh_s
        head = config.get("head_server") or {}
        host = head.get("host") or config.get("default_host") or "127.0.0.1"
        self._head = f"http://{host}:{head.get('port') or 11000}"
        self._tables: dict[str, tuple[float, list[str]]] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._served: collections.Counter[str] = collections.Counter()
        self._pinned: collections.OrderedDict[tuple[str, str], str] = collections.OrderedDict()
        self._placed: dict[str, bool] = {}  # the config does not change: asked once per name
        # replicas that failed a connection lately: passed over while others answer (the head
        # may list a dead replica until Ray has started its successor)
        self._refused: dict[str, float] = {}

    def placed(self, name: str) -> bool:
        """Whether ``name`` runs as replicas (else callers use its configured address)."""
        found = self._placed.get(name)
        if found is None:
            found = self._placed[name] = is_placed(self._config, name)
        return found

    async def urls(self, name: str, *, refresh: bool = False) -> list[str]:
        """The registered replica URLs of ``name``, in replica order."""
        cached = self._tables.get(name)
        if cached is not None and not refresh and time.monotonic() - cached[0] < self._refresh_s:
            return cached[1]
        resp = await self._http.request(
            "GET",
            f"{self._head}/replicas",
            params={"instance": name},
            timeout_s=10.0,
            retry=RetryPolicy(max_attempts=3, backoff_base_s=0.2),
        )
        if resp.status != 200:
            raise UpstreamError(
                f"the head server at {self._head} did not list the replicas of {name!r} "
                f"(HTTP {resp.status})",
                status=resp.status,
                kind="connection",
            )
        rows = sorted(_TABLE.validate_json(resp.body), key=lambda r: r.replica)
        urls = [r.url for r in rows]
        self._tables[name] = (time.monotonic(), urls)
        return urls

    async def pick(self, name: str, session_id: str | None) -> str:
        """The replica URL for one call of ``name`` (see the module docstring).

        Raises:
            UpstreamError: no replica is registered, or the rollout's replica is gone.
        """
        section = instance_section(self._config, name)
        sticky = session_id is not None and section is not None
        sticky = sticky and section is not None and section[0] == "resources_servers"
        key = (name, session_id or "")
        urls = await self.urls(name)
        if sticky and key in self._pinned:
            url = self._pinned[key]
            if url not in urls:
                urls = await self.urls(name, refresh=True)
            if url not in urls:
                del self._pinned[key]
                raise UpstreamError(
                    f"the replica of {name!r} at {url} that held this rollout's state is gone; "
                    "the rollout fails (it is run again on resume)",
                    kind="connection",
                )
            self._pinned.move_to_end(key)
            return url
        if not urls:
            urls = await self.urls(name, refresh=True)
        if not urls:
            raise UpstreamError(
                f"no replica of {name!r} is registered with the head server", kind="connection"
            )
        if self._refused:  # rarely: only after a replica failed a connection
            now = time.monotonic()
            self._refused = {u: t for u, t in self._refused.items() if now - t < REFUSED_HOLD_S}
            urls = [u for u in urls if u not in self._refused] or urls
        url = min(urls, key=lambda u: (self._in_flight[u], self._served[u]))
        if sticky:
            self._pinned[key] = url
            if len(self._pinned) > MAX_PINNED_SESSIONS:
                self._pinned.popitem(last=False)
        return url

    @contextlib.asynccontextmanager
    async def lease(
        self,
        name: str,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> AsyncIterator[str | None]:
        """Hold a replica of ``name`` for one call; None when ``name`` is not replicated."""
        if not self.placed(name):
            yield None
            return
        url = await self.pick(name, session_of(headers, cookies))
        self._in_flight[url] += 1
        self._served[url] += 1
        try:
            yield url
        except UpstreamError as exc:
            if exc.kind == "connection":  # read the table again before the next pick
                self._tables.pop(name, None)
                self._refused[url] = time.monotonic()
            raise
        finally:
            self._in_flight[url] -= 1
