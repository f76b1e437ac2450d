"""Feed, read and bound one sandbox launcher process from the event loop.

``sandbox.py`` starts ``sandbox_launcher.py`` and hands the process to a ``Supervisor``, which
writes its stdin, reads stdout and stderr with a byte cap, follows the launcher's status lines,
enforces the wall clock (counted from the moment the program starts) and always leaves the
process's session dead. It also holds the models the two share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from contextlib import suppress

from pydantic import BaseModel

LOG = logging.getLogger(__name__)
#: How long the launcher may take to set up before its program starts (a verifier problem).
SETUP_TIMEOUT_S = 30.0
#: After the program ends, how long to wait for its pipes to close.
DRAIN_TIMEOUT_S = 2.0
#: How long the launcher may take to kill what its program left (then its session is killed).
STOP_GRACE_S = 5.0
STDERR_TAIL_BYTES = 2000


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): the row must not be scored."""


class Limits(BaseModel):
    """Per-program limits."""

    wall_seconds: float
    cpu_seconds: int
    memory_mb: int
    max_output_bytes: int
    max_file_mb: int
    max_processes: int
    tmp_mb: int


class ProgramRun(BaseModel):
    """How one program run ended."""

    stdout: bytes
    stderr_tail: str
    exit_code: int | None
    signal: int | None
    timed_out: bool
    output_limited: bool
    seconds: float


class Supervisor:
    """Feeds, reads and bounds one launcher process; always leaves its session dead."""

    def __init__(self, proc: asyncio.subprocess.Process, status_fd: int, limits: Limits) -> None:
        self.proc, self.limits = proc, limits
        self.status_fd = status_fd
        self.status: list[str] = []
        self.started = asyncio.Event()
        self.stdout = bytearray()
        self.stderr_tail = b""
        self.output_limited = False

    def kill(self) -> None:
        """Ask the launcher to kill its program and whatever that left (it is a subreaper)."""
        if self.proc.returncode is None:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(self.proc.pid, signal.SIGTERM)

    async def _ended_within(self, seconds: float) -> bool:
        """Whether ``proc.wait()`` returns within ``seconds``: since Python 3.12 it returns once
        the launcher has exited and its pipes have closed."""
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), seconds)
        except TimeoutError:
            return False
        return True

    async def _stop(self) -> None:
        """Leave the launcher's session dead: politely first, then with SIGKILL; never wait
        for ever on pipes a process that escaped holds open."""
        self.kill()
        if not await self._ended_within(STOP_GRACE_S):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if not await self._ended_within(DRAIN_TIMEOUT_S):
                LOG.warning("code_gen sandbox: a program's pipes stayed open after it ended")
                self.proc._transport.close()  # type: ignore[attr-defined]  # no public close
                await self.proc.wait()

    async def supervise(self, stdin: bytes) -> ProgramRun:
        loop = asyncio.get_running_loop()
        status_reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(status_reader), os.fdopen(self.status_fd, "rb")
        )
        tasks = [
            asyncio.create_task(self._feed(stdin)),
            asyncio.create_task(self._read_status(status_reader)),
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]
        timed_out, start = False, time.monotonic()
        try:
            timed_out, start = await self._wait()
        finally:
            await self._stop()
            _, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
            for task in pending:
                task.cancel()
            transport.close()
        return self._result(timed_out, time.monotonic() - start)

    async def _wait(self) -> tuple[bool, float]:
        exited = asyncio.create_task(self.proc.wait())
        started = asyncio.create_task(self.started.wait())
        await asyncio.wait(
            {exited, started}, timeout=SETUP_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        started.cancel()
        start = time.monotonic()
        if not self.started.is_set():
            exited.cancel()
            if self.proc.returncode is None:
                raise SandboxError(f"the sandbox did not start within {SETUP_TIMEOUT_S} s")
            return False, start
        done, _ = await asyncio.wait({exited}, timeout=self.limits.wall_seconds)
        if not done:
            exited.cancel()
        return not done and not self.output_limited, start

    def _result(self, timed_out: bool, seconds: float) -> ProgramRun:
        errors = [line for line in self.status if line.startswith("setup-error")]
        if errors or not self.started.is_set():
            detail = errors[0] if errors else self.stderr_tail.decode(errors="replace")
            raise SandboxError(f"the sandbox could not start the program: {detail}")
        ends = [line.split() for line in self.status if line.split()[0] in ("exit", "signal")]
        kind, number = (ends[0][0], int(ends[0][1])) if ends else (None, None)
        return ProgramRun(
            stdout=bytes(self.stdout),
            stderr_tail=self.stderr_tail.decode(errors="replace"),
            exit_code=number if kind == "exit" else None,
            signal=number if kind == "signal" else None,
            timed_out=timed_out,
            output_limited=self.output_limited,
            seconds=seconds,
        )

    async def _feed(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
            self.proc.stdin.close()

    async def _read_status(self, reader: asyncio.StreamReader) -> None:
        async for raw in reader:
            line = raw.decode(errors="replace").strip()
            self.status.append(line)
            if line == "exec":
                self.started.set()

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(1 << 16):
            if len(self.stdout) + len(chunk) > self.limits.max_output_bytes:
                self._over_limit()
            elif not self.output_limited:
                self.stdout += chunk

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        total = 0
        while chunk := await self.proc.stderr.read(1 << 16):
            total += len(chunk)
            self.stderr_tail = (self.stderr_tail + chunk)[-STDERR_TAIL_BYTES:]
            if total > self.limits.max_output_bytes:
                self._over_limit()

    def _over_limit(self) -> None:
        """Stop the program; the readers go on draining (discarding) until its pipes close."""
        if not self.output_limited:
            self.output_limited = True
            self.kill()


def kill_processes_of(uid: int, timeout_s: float = STOP_GRACE_S) -> None:
    """SIGKILL every process owned by ``uid`` (a sandbox slot's), until none is left.

    Blocking (run it in a thread). A pidfd pins each process while its owner is checked, so a
    pid reused meanwhile is never signalled."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                pidfd = os.pidfd_open(int(entry.name))
            except OSError:
                continue
            try:
                if os.stat(entry.path).st_uid == uid:
                    found = True
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)
        if not found:
            return
        time.sleep(0.01)  # the killed processes are being torn down
    LOG.warning("code_gen sandbox: processes of uid %d survived %.0f s of SIGKILL", uid, timeout_s)
