"""The pooled outbound HTTP client every Gym process uses, with timeouts and bounded retries.

One aiohttp session per process (created in the server's lifespan, closed on shutdown): aiohttp
rather than httpx because httpx's pool degrades quadratically with queued requests, which hung
NeMo Gym runs at 16k concurrent rollouts. Every call has a deadline; retries are bounded three
ways: attempts per call, a cap on any single wait (``Retry-After`` is honoured up to it), and a
retry budget per upstream over a sliding window (``retry_budget.py``), so a dead upstream fails
fast instead of becoming a retry storm. The budget also counts upstream answers and throttling
ones (``/health`` reports them, for the collector's concurrency governor).

Each attempt goes through a :class:`~nemo_gym.server.transport.Transport`: by default the
session's own (over TCP); tests pass an ``AsgiTransport`` to call apps in process.

Calls to one upstream beyond ``limit_per_host`` wait in this client's own queue
(``server.call_slots``) before aiohttp sees them, so that a call waiting for a connection holds
no request object and its wait is known. :func:`open_files_budget` sizes a
server's pool from the process's open-file limit, which it raises to the hard limit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from nemo_gym.core import jsonbytes
from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.call_slots import CallSlots
from nemo_gym.server.retry_budget import RetryBudget, is_throttling, retry_after_s
from nemo_gym.server.transport import AiohttpTransport, Transport

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """How one call is retried.

    Attributes:
        max_attempts: attempts in all, the first included.
        backoff_base_s: first backoff; doubles each attempt, with full jitter.
        backoff_max_s: cap on one wait, including a server's ``Retry-After``.
        retry_statuses: HTTP statuses worth retrying.
        retry_timeouts: retry when the call timed out (off for slow, non-idempotent calls).
        retry_after_sent: retry a non-GET call whose connection failed after it was sent (it may
            have run already). Connections that were never made are always retried.
    """

    max_attempts: int = 4
    backoff_base_s: float = 0.25
    backoff_max_s: float = 30.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    retry_timeouts: bool = False
    retry_after_sent: bool = True


NO_RETRY = RetryPolicy(max_attempts=1)


def open_files_budget(share: float = 0.125) -> int:
    """``share`` of this process's open-file limit, after raising the soft limit to the hard one.

    A server holds one descriptor per connection in and out: an agent with 16,384 rollouts in
    flight has 16,384 inbound connections, so its outbound pool must leave room for them (with
    the 20,000 descriptors of a common container limit, an eighth is 2,500; servers use a twelfth,
    ``launch.build_server``).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(64, int(soft * share))


class BodyReader:
    """``response.content`` of a read response: ``await response.content.read()`` is the body,
    as on an aiohttp response (code written for NeMo Gym reads tool outputs this way)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self, n: int = -1) -> bytes:
        return self._body if n < 0 else self._body[:n]


@dataclass
class HttpResponse:
    """A fully read HTTP response (the body is bytes; ``json()`` parses it)."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    url: str = ""

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies the server set (parsed on demand: most callers never look)."""
        getall = getattr(self.headers, "getall", None)
        values = getall("Set-Cookie", []) if getall else [self.headers.get("Set-Cookie", "")]
        jar: SimpleCookie = SimpleCookie()
        for value in values:
            if value:
                jar.load(value)
        return {name: morsel.value for name, morsel in jar.items()}

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content(self) -> BodyReader:
        """The body behind aiohttp's stream interface (``await .content.read()``)."""
        return BodyReader(self.body)

    def json_sync(self) -> Any:
        return jsonbytes.loads(self.body)

    async def json(self) -> Any:
        """Parse the body as JSON (async for compatibility with aiohttp's response)."""
        return jsonbytes.loads(self.body)

    async def read(self) -> bytes:
        return self.body

    async def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def raise_for_status(self) -> None:
        """Raise :class:`UpstreamError` unless the status is 2xx."""
        if not self.ok:
            raise UpstreamError(
                f"{self.url} answered HTTP {self.status}: "
                f"{self.body[:2000].decode(errors='replace')}",
                status=self.status,
                body=self.body[:8000].decode(errors="replace"),
            )


class HttpClient:
    """One pooled aiohttp session with Gym's timeout and retry rules.

    Args:
        timeout_s: default deadline of one attempt (connect + response), in seconds.
        connect_timeout_s: deadline to open a connection.
        limit: maximum open connections in all.
        limit_per_host: most calls in flight to one host:port; more wait in this client's
            queue (their wait counts in their deadline).
        budget: the retry budget shared by every call of this client.
        transport: how attempts are sent; by default over this client's aiohttp session.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        limit: int = 4096,
        limit_per_host: int = 1024,
        budget: RetryBudget | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.limit = limit
        self.limit_per_host = limit_per_host
        self.budget = budget or RetryBudget()
        self._session: aiohttp.ClientSession | None = None
        self.transport: Transport = transport or AiohttpTransport(lambda: self.session)
        self.slots = CallSlots(limit_per_host, limit)  # calls beyond the limits wait there

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, created on first use inside the running loop."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,  # both limits are enforced by this client's own queue (self.slots)
                limit_per_host=0,
                keepalive_timeout=30,  # under the servers' 60 s, so the client closes first
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s),
            )
        return self._session

    async def close(self) -> None:
        """Close the session and its connections."""
        await self.transport.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        self.slots.clear()

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy = RetryPolicy(),
        params: dict[str, str] | None = None,
    ) -> HttpResponse:
        """Make a call, retrying as ``retry`` allows; return the last response read in full.

        A final non-retryable or exhausted retryable *status* is returned, not raised (callers
        decide what a 4xx means); connection failures and timeouts raise.

        Raises:
            UpstreamError: connection failure or timeout on the last attempt.
        """
        if json is not None:
            data = jsonbytes.dumps(json)  # the body waits for a slot and an answer
            headers = {"Content-Type": "application/json", **(headers or {})}
        if cookies:
            cookie_header = "; ".join(f"{k}={v}" for k, v in cookies.items())
            headers = {**(headers or {}), "Cookie": cookie_header}
        deadline_s = timeout_s or self.timeout_s
        loop = asyncio.get_running_loop()
        what = f"{method} {url}"
        upstream = urlsplit(url).netloc
        self.budget.record_request(upstream)
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            deadline = loop.time() + deadline_s  # of this attempt, its wait for a slot included
            queued, held = await self.slots.acquire(upstream, deadline, what)
            sent = loop.time()
            # sock_connect, not connect: aiohttp's `connect` would also count a wait for a
            # pooled connection (the queue above is where calls wait).
            timeout = aiohttp.ClientTimeout(
                total=max(0.001, deadline - sent), sock_connect=self.connect_timeout_s
            )
            try:
                status, resp_headers, body = await self.transport.send(
                    method, url, data=data, headers=headers, timeouts=timeout, params=params
                )
                result = HttpResponse(status=status, body=body, headers=resp_headers, url=url)
                if retry.retry_statuses:  # an upstream API (Gym servers' calls retry no status)
                    throttled = is_throttling(result.status, result.headers.get("Retry-After"))
                    self.budget.record_answer(throttled)
                if result.status not in retry.retry_statuses:
                    return result
                wait = retry_after_s(result.headers.get("Retry-After"))
                failure: Exception | HttpResponse = result
            except aiohttp.ConnectionTimeoutError as exc:
                failure = exc  # the connection was never made: always safe to try again
            except TimeoutError as exc:
                if loop.time() < deadline - 0.05:  # not our deadline: a socket-level timeout
                    failure = exc
                    if method != "GET" and not retry.retry_after_sent:
                        raise UpstreamError(
                            f"{what} failed after {loop.time() - sent:.1f}s, before its "
                            f"{deadline_s:g}s deadline: {type(exc).__name__}: {exc}",
                            kind="connection",
                        ) from exc
                elif not retry.retry_timeouts:
                    raise UpstreamError(
                        f"{what} got no answer within its {deadline_s:g}s deadline"
                        + (f" ({queued:.1f}s of it waiting for a connection)" if queued else ""),
                        kind="timeout",
                    ) from exc
                else:
                    failure = exc
            except aiohttp.ClientConnectorError as exc:
                failure = exc  # never reached the server: always safe to try again
            except aiohttp.ClientError as exc:
                failure = exc
                if method != "GET" and not retry.retry_after_sent:
                    # The request may have run (a tool may have changed state): do not repeat it.
                    raise UpstreamError(
                        f"{what} failed: {type(exc).__name__}: {exc}", kind="connection"
                    ) from exc
            finally:
                self.slots.release(held)
            if attempt >= retry.max_attempts or not self.budget.try_spend(upstream):
                if isinstance(failure, HttpResponse):
                    return failure
                timed_out = isinstance(failure, TimeoutError) and loop.time() >= deadline - 0.05
                raise UpstreamError(
                    f"{what} failed after {attempt} attempt(s): "
                    f"{type(failure).__name__}: {failure}",
                    kind="timeout" if timed_out else "connection",
                ) from failure
            backoff = random.uniform(
                0, min(retry.backoff_max_s, retry.backoff_base_s * 2 ** (attempt - 1))
            )
            delay = min(retry.backoff_max_s, max(backoff, wait or 0.0))
            logger.warning(
                "%s %s: %s; retry %d/%d in %.2fs",
                method,
                url,
                f"HTTP {failure.status}"
                if isinstance(failure, HttpResponse)
                else type(failure).__name__,
                attempt,
                retry.max_attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)
