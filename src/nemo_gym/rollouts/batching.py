"""The collector's side of ``/run_batch``: rows to one agent share streaming requests.

Each worker of ``collect`` still runs one row and waits for its answer; :class:`RunBatcher`
gathers the rows submitted to an agent within a short window (at most ``MAX_ROWS`` rows or
``MAX_BYTES`` of bodies) into one ``POST /run_batch`` (wire format: ``nemo_gym.server.run_batch``)
and hands each worker its row's answer as the stream delivers it. A 16,384-in-flight run then
holds a few hundred connections instead of 16,384 (see the agent module for the memory this
saves).

The window adapts: zero at first (rows submitted in one loop turn go together, as when every
worker starts), then 1% of the mean rollout time seen so far, at most ``MAX_LINGER_S``: the
wait is negligible next to the rollout and rows finishing together restart together.

Failures keep ``/run``'s meaning: a stream that never connected is tried again (its rows never
ran); one that breaks fails the rows still waiting, as a broken ``/run`` would, with the same
error kinds; an agent without the route (404/405; not built on Gym's agent base) is remembered
and its rows go to ``/run`` one by one. A row whose answer has not come ``GRACE_S`` after its
deadline fails as ``timeout`` even if the agent hangs. Neighbours: ``collect`` (the workers),
``nemo_gym.server.run_batch`` (the route).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.http_client import HttpClient, HttpResponse
from nemo_gym.server.run_batch import RUN_BATCH_PATH

logger = logging.getLogger(__name__)

MAX_ROWS = 256
MAX_BYTES = 8 << 20
MAX_LINGER_S = 0.05
#: Seconds past a row's deadline before the collector stops waiting for the agent's answer.
GRACE_S = 5.0
#: Attempts at a stream whose connection was never made (its rows cannot have run).
CONNECT_ATTEMPTS = 4


@dataclass
class _Pending:
    rows: list[tuple[bytes, asyncio.Future[HttpResponse | None]]] = field(default_factory=list)
    size: int = 0
    flush: asyncio.Handle | None = None


def batch_url(run_url: str) -> str:
    """``.../run`` -> ``.../run_batch`` (same server, same prefix)."""
    parts = urlsplit(run_url)
    path = parts.path[: -len("/run")] if parts.path.endswith("/run") else parts.path
    return urlunsplit(parts._replace(path=path + RUN_BATCH_PATH))


class RunBatcher:
    """Runs rows over ``/run_batch`` streams; ``run`` answers ``None`` where the agent has no
    such route (the caller then posts ``/run`` itself)."""

    def __init__(
        self,
        http: HttpClient,
        timeout_s: float,
        connect_timeout_s: float,
        grace_s: float = GRACE_S,
    ) -> None:
        self.http = http
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.connect_timeout_s = connect_timeout_s
        self._pending: dict[str, _Pending] = {}
        self._unsupported: set[str] = set()
        self._streams: set[asyncio.Task[None]] = set()
        self._mean_s = 0.0  # running mean of rollout times (sets the window)
        self._finished = 0
        self.streams_opened = 0

    async def run(self, run_url: str, body: bytes) -> HttpResponse | None:
        """The agent's answer to ``body`` as ``/run`` would give it, or ``None`` (no route).

        Raises:
            UpstreamError: the stream broke or timed out before this row's answer (``kind``
                ``connection`` or ``timeout``, as for ``/run``).
        """
        if run_url in self._unsupported:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[HttpResponse | None] = loop.create_future()
        pending = self._pending.setdefault(run_url, _Pending())
        pending.rows.append((body, future))
        pending.size += len(body) + 1
        if len(pending.rows) >= MAX_ROWS or pending.size >= MAX_BYTES:
            self._flush(run_url)
        elif pending.flush is None:
            linger = min(MAX_LINGER_S, 0.01 * self._mean_s)
            pending.flush = (
                loop.call_later(linger, self._flush, run_url)
                if linger > 0
                else loop.call_soon(self._flush, run_url)
            )
        del pending  # it lists the batch's rows and answers: they are not kept while we wait
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s + self.grace_s):
                answer = await future  # cancelled at the deadline: the stream skips it
        except TimeoutError:
            raise UpstreamError(
                f"POST {run_url} (in a {RUN_BATCH_PATH} stream) got no answer within its "
                f"{self.timeout_s:g}s deadline",
                kind="timeout",
            ) from None
        self._finished += 1
        self._mean_s += (time.monotonic() - started - self._mean_s) / self._finished
        return answer

    def _flush(self, run_url: str) -> None:
        pending = self._pending.pop(run_url, None)
        if pending is None or not pending.rows:
            return
        if pending.flush is not None:
            pending.flush.cancel()
        task = asyncio.get_running_loop().create_task(self._stream(run_url, pending.rows))
        self._streams.add(task)
        task.add_done_callback(self._streams.discard)

    async def _stream(
        self, run_url: str, rows: list[tuple[bytes, asyncio.Future[HttpResponse | None]]]
    ) -> None:
        self.streams_opened += 1
        url = batch_url(run_url)
        head = orjson.dumps({"timeout_s": self.timeout_s})
        data = b"\n".join([head, *(body for body, _ in rows)])
        futures: list[asyncio.Future[HttpResponse | None] | None] = [f for _, f in rows]
        del rows
        try:
            await self._send_and_read(run_url, url, data, futures)
        except UpstreamError as exc:
            _fail(futures, exc)
        except asyncio.CancelledError:
            _fail(futures, UpstreamError(f"POST {url}: the collector stopped", kind="connection"))
            raise
        else:  # the stream ended without some answers: the agent closed it early
            _fail(
                futures,
                UpstreamError(
                    f"POST {url}: the stream ended before this row's answer", kind="connection"
                ),
            )

    async def _send_and_read(
        self,
        run_url: str,
        url: str,
        data: bytes,
        futures: list[asyncio.Future[HttpResponse | None] | None],
    ) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s)
        headers = {"Content-Type": "application/x-ndjson"}
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                async with self.http.session.post(
                    url, data=data, headers=headers, timeout=timeout
                ) as resp:
                    if resp.status in (404, 405):
                        self._unsupported.add(run_url)
                        logger.info("%s has no %s: one /run per row", run_url, RUN_BATCH_PATH)
                        for future in futures:
                            if future is not None and not future.done():
                                future.set_result(None)
                        return
                    if resp.status != 200:
                        text = (await resp.read())[:2000].decode(errors="replace")
                        raise UpstreamError(
                            f"POST {url} answered HTTP {resp.status}: {text}", kind="connection"
                        )
                    await _read_records(resp, url, run_url, futures)
                    return
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                if attempt == CONNECT_ATTEMPTS:
                    raise UpstreamError(
                        f"POST {url} failed after {attempt} attempt(s): "
                        f"{type(exc).__name__}: {exc}",
                        kind="connection",
                    ) from exc
                await asyncio.sleep(random.uniform(0, 0.5 * 2 ** (attempt - 1)))
            except aiohttp.ClientError as exc:  # sent: its rows may have run, never repeat them
                raise UpstreamError(
                    f"POST {url} failed: {type(exc).__name__}: {exc}", kind="connection"
                ) from exc

    async def close(self) -> None:
        """Stop every stream (their waiting rows fail as ``connection``)."""
        for task in list(self._streams):
            task.cancel()
        await asyncio.gather(*self._streams, return_exceptions=True)


async def _read_records(
    resp: aiohttp.ClientResponse,
    url: str,
    run_url: str,
    futures: list[asyncio.Future[HttpResponse | None] | None],
) -> None:
    """Hand out answers until the stream ends or no row waits any more (leaving the rest
    unread closes the connection, and the agent cancels those rows)."""
    # an answered row's slot is emptied, so that its answer is not kept until the batch ends
    while any(future is not None and not future.done() for future in futures):
        try:
            line = await resp.content.readline()
            if not line:
                return
            header = orjson.loads(line)
            body = await resp.content.readexactly(int(header["length"]))
            await resp.content.readexactly(1)  # the newline after it
            future = futures[int(header["i"])]
        except asyncio.IncompleteReadError:
            return  # cut off mid-record: the rows still waiting fail
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise UpstreamError(
                f"POST {url}: the agent sent a malformed record: {type(exc).__name__}: {exc}",
                kind="connection",
            ) from None
        futures[int(header["i"])] = None
        if future is not None and not future.done():  # else answered twice, or given up on
            _hand_out(future, header, body, url, run_url)
        del future, body  # the answer is the worker's alone while the next record comes


def _hand_out(
    future: asyncio.Future[HttpResponse | None],
    header: dict[str, Any],
    body: bytes,
    url: str,
    run_url: str,
) -> None:
    status = int(header["status"])
    if status == 0:
        kind = "timeout" if header.get("kind") == "timeout" else "connection"
        message = body.decode(errors="replace")
        future.set_exception(UpstreamError(f"POST {run_url}: {message}", kind=kind))
    else:
        future.set_result(HttpResponse(status=status, body=body, headers={}, url=url))


def _fail(futures: list[asyncio.Future[HttpResponse | None] | None], exc: UpstreamError) -> None:
    for future in futures:
        if future is not None and not future.done():
            future.set_exception(UpstreamError(str(exc), kind=exc.kind))
