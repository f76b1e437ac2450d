"""``POST /run_batch``: many ``/run`` rows over one connection, each answer streamed as it ends.

A collector with 16,384 rollouts in flight held 16,384 ``/run`` connections open, and each cost
about 15 KB in the collector's HTTP client and 11 KB in the agent's HTTP server before any
rollout work: 430 MB of the run's memory, and as many file descriptors in both processes. This
route takes a batch of rows and runs each through the agent's own app as a ``POST /run``
(in-process, through the same middleware, so an agent written for NeMo Gym behaves exactly as
over HTTP), and streams every answer back the moment its rollout ends.

Wire format (both directions are plain bytes, so no row is parsed or encoded twice):

* request: one JSON line ``{"timeout_s": <seconds>}``, then one ``/run`` body per line (compact
  JSON, as the collector holds its rows); an empty batch is a valid probe;
* answer (``200``, :data:`STREAM_CONTENT_TYPE`): per finished row, a JSON header line
  ``{"i": <row index in the batch>, "status": <HTTP status of its /run>, "length": <n>}``, then
  the ``n`` bytes of that ``/run`` answer and a newline. ``status`` 0 means the row got no
  answer: ``kind`` (``timeout``: its ``timeout_s`` passed; ``agent_error``: the app raised
  without answering) and the message as the body.

Rows start as ``admission`` (``server.admission``) lets them: at once, unless the agent's
outbound connections are all busy. A row's deadline runs from when its batch arrived,
its wait to start included. When the client goes away, the rows it is still waiting for are
cancelled. Neighbours: ``agent.server`` (mounts the route), ``nemo_gym.rollouts.batching``
(the collector's side).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import nullcontext
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nemo_gym.server.admission import RowAdmission

logger = logging.getLogger(__name__)

RUN_BATCH_PATH = "/run_batch"
STREAM_CONTENT_TYPE = b"application/vnd.nemo-gym.run-stream"
#: Scope keys a row's ``/run`` takes over from the batch request (the rest is its own).
_INHERITED = ("type", "asgi", "http_version", "scheme", "server", "client", "root_path")


def record(index: int, status: int, body: bytes, kind: str | None = None) -> bytes:
    """One answer as it goes on the wire: header line, body, newline."""
    header: dict[str, Any] = {"i": index, "status": status, "length": len(body)}
    if kind is not None:
        header["kind"] = kind
    return b"".join((orjson.dumps(header), b"\n", body, b"\n"))


class RunBatchEndpoint:
    """The ASGI endpoint of ``/run_batch``, running rows through ``app`` (the agent's app)."""

    def __init__(
        self, app: ASGIApp, run_path: str = "/run", admission: RowAdmission | None = None
    ) -> None:
        self.app = app
        self.run_path = run_path
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        lines = b"".join(chunks).split(b"\n")
        del chunks
        try:
            header = orjson.loads(lines[0])
            timeout_s = float(header["timeout_s"])
            assert timeout_s > 0
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AssertionError):
            await _answer_error(send, 422, 'the first line must be {"timeout_s": <seconds>}')
            return
        rows = [line for line in lines[1:] if line.strip()]
        del lines
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", STREAM_CONTENT_TYPE)],
            }
        )
        done: asyncio.Queue[bytes] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._run_row(scope, i, row, timeout_s, done))
            for i, row in enumerate(rows)
        ]
        del rows
        gone = asyncio.create_task(_disconnected(receive))
        remaining = len(tasks)
        try:
            while remaining:
                waiter = asyncio.create_task(done.get())
                await asyncio.wait((waiter, gone), return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done():
                    waiter.cancel()
                    return  # the client went away: the finally cancels its rows
                out = [waiter.result()]
                while not done.empty():  # everything finished meanwhile goes in one write
                    out.append(done.get_nowait())
                remaining -= len(out)
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            for task in tasks:
                task.cancel()

    async def _run_row(
        self, batch: Scope, index: int, body: bytes, timeout_s: float, done: asyncio.Queue[bytes]
    ) -> None:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        waited: float | None = None  # seconds the row waited to start, once it started
        try:
            async with asyncio.timeout(timeout_s):
                admitted = self.admission.admitted() if self.admission else nullcontext()
                async with admitted:
                    waited = loop.time() - arrived
                    status, answer = await self._run(batch, body)
        except TimeoutError:
            message = f"POST {self.run_path}: no answer within its {timeout_s:g}s deadline"
            if waited is None:
                message += " (it never started: the agent's connections were all busy)"
            elif waited >= 0.1:
                message += f" ({waited:.1f}s of it waiting to start behind busy connections)"
            done.put_nowait(record(index, 0, message.encode(), "timeout"))
            return
        except Exception as exc:
            logger.warning("run_batch row %d raised %s: %s", index, type(exc).__name__, exc)
            message = f"POST {self.run_path} raised {type(exc).__name__}: {exc}"
            done.put_nowait(record(index, 0, message.encode(), "agent_error"))
            return
        done.put_nowait(record(index, status, answer))

    async def _run(self, batch: Scope, body: bytes) -> tuple[int, bytes]:
        """``body`` through the app as ``POST /run``: the status and body it answered.

        Raises:
            Exception: what the app raised before it answered (after, its answer stands).
        """
        status = 0
        parts: list[bytes] = []
        scope: dict[str, Any] = {key: batch[key] for key in _INHERITED if key in batch}
        scope.update(
            method="POST",
            path=self.run_path,
            raw_path=self.run_path.encode(),
            query_string=b"",
            headers=[
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        )
        if "state" in batch:
            scope["state"] = dict(batch["state"])
        sent = False

        async def receive() -> Message:
            nonlocal sent, body
            if not sent:
                sent, data, body = True, body, b""  # the route keeps what it needs
                return {"type": "http.request", "body": data, "more_body": False}
            await asyncio.Event().wait()  # a row never disconnects; it is cancelled instead
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:
            if not status:
                raise
        return status, b"".join(parts)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer_error(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": {"type": "InvalidBatch", "message": message}})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
