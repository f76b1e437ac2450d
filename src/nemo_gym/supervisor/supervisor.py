"""The ``ng_run`` supervisor: start every server, wait until healthy, watch them, stop in order.

Start-up binds every listening socket first (a taken port is reported before anything starts),
forks one process per instance and then the head server, and polls each ``/health`` until a
deadline. A child that exits or does not become healthy in time is named with the tail of its
log, the others are stopped, and ``ng_run`` exits 1. A child whose settings are wrong reports the
key in one marker line (``config.server_settings``) and exits; the supervisor keeps it in
:attr:`Supervisor.config_error` for ``ng_run`` to name the file and line, and returns 2. Every
line a child prints passes through ``redact`` (the config's secrets) before it is shown or kept.
On Ctrl+C (or SIGTERM) agents are stopped first, so that in-flight rollouts can finish against
models and resources servers that are still up, then models and resources servers, then the head
server; each group gets the grace period to finish its requests. A second Ctrl+C kills
everything at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nemo_gym.config.server_settings import parse_config_error
from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.http_client import NO_RETRY, HttpClient
from nemo_gym.supervisor.children import ChildProcess
from nemo_gym.supervisor.restarts import RestartPolicy, exit_cause

logger = logging.getLogger(__name__)

#: Seconds each server group may take to exit after SIGTERM once the grace period is used up.
GROUP_MIN_S = 2.0
#: Stop order: agents first (their in-flight rollouts still need the others), the head last.
STOP_ORDER = (
    ("responses_api_agents",),
    ("responses_api_models", "resources_servers"),
    ("head_server",),
)


@dataclass
class SupervisorOptions:
    """Timing of ``ng_run``."""

    startup_timeout_s: float = 60.0
    graceful_shutdown_s: float = 30.0
    echo_logs: bool = True
    restarts: RestartPolicy = field(default_factory=RestartPolicy)


class Supervisor:
    """Watches the processes ``ng_run`` started (see module docstring)."""

    def __init__(
        self,
        children: list[ChildProcess],
        options: SupervisorOptions,
        write: Callable[[str], None],
        redact: Callable[[str], str] = str,
    ) -> None:
        self.children = children
        self.options = options
        self.write = write
        self.redact = redact
        #: ``(dotted key, message)`` of the config error that stopped the start-up, if any.
        self.config_error: tuple[str | None, str] | None = None
        self._reported: dict[str, tuple[str | None, str]] = {}
        self._exited = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lost: list[ChildProcess] = []  # servers gone for good that ng_run runs without
        self._pumps: dict[str, asyncio.Task[None]] = {}

    # -- plumbing -------------------------------------------------------------------------------
    async def _pump_logs(self, child: ChildProcess) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        pipe = os.fdopen(child.log_fd, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        try:
            while line := await reader.readline():
                text = self.redact(line.decode("utf-8", errors="replace").rstrip("\n"))
                reported = parse_config_error(text)
                if reported is not None:  # ng_run prints it with the file and line
                    self._reported.setdefault(child.name, reported)
                    continue
                child.tail.append(text)
                if self.options.echo_logs:
                    self.write(f"[{child.name}] {text}\n")
        finally:
            transport.close()

    def _reap(self, child: ChildProcess) -> bool:
        if child.exit_code is not None:
            return True
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            child.exit_code = -1
            return True
        if pid == 0:
            return False
        child.exit_code = os.waitstatus_to_exitcode(status)
        if child.popen is not None:  # reaped here: tell the Popen object, which cannot know
            child.popen.returncode = child.exit_code
        return True

    async def _watch_exit(self, child: ChildProcess) -> None:
        loop = asyncio.get_running_loop()
        exited = asyncio.Event()
        try:
            pidfd = os.pidfd_open(child.pid)
        except (AttributeError, OSError):
            while not self._reap(child):  # noqa: ASYNC110 - no pidfd here: poll for the exit
                await asyncio.sleep(0.2)
        else:
            loop.add_reader(pidfd, exited.set)
            try:
                await exited.wait()
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
            while not self._reap(child):  # noqa: ASYNC110 - exit seen, status not yet reapable
                await asyncio.sleep(0.01)
        child.exited.set()
        self._exited.set()

    # -- phases ---------------------------------------------------------------------------------
    async def _wait_healthy(
        self, http: HttpClient, children: list[ChildProcess]
    ) -> ChildProcess | None:
        """Return None when all are healthy, else the child that failed or timed out."""
        deadline = time.monotonic() + self.options.startup_timeout_s
        pending = list(children)
        while pending:
            for child in list(pending):
                if child.exit_code is not None:
                    return child
                try:
                    resp = await http.request("GET", f"{child.url}/health", retry=NO_RETRY)
                    if resp.status == 200:
                        pending.remove(child)
                except UpstreamError:
                    pass
            if not pending:
                return None
            if time.monotonic() > deadline:
                return pending[0]
            if self._stop.is_set():
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 0.05)
        return None

    async def _probe_health(self, children: list[ChildProcess]) -> ChildProcess | None:
        """:meth:`_wait_healthy` with a client of its own (1 s per probe, no retries)."""
        http = HttpClient(timeout_s=1.0)
        try:
            return await self._wait_healthy(http, children)
        finally:
            await http.close()

    def _signal(self, children: list[ChildProcess], sig: int) -> None:
        for child in children:
            if child.exit_code is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, sig)

    async def stop_all(self) -> None:
        """Stop the children group by group, all within one grace period.

        The grace is shared: agents get what they need of it to finish their rollouts, the
        later groups what is left (at least ``GROUP_MIN_S`` each to exit cleanly), so stopping
        takes at most the grace plus a few seconds, however many servers hang.
        """
        deadline = time.monotonic() + self.options.graceful_shutdown_s
        for group in STOP_ORDER:
            members = [c for c in self.children if c.server_type in group]
            self._signal(members, signal.SIGTERM)
            waits = asyncio.gather(*(c.exited.wait() for c in members))
            budget = max(deadline - time.monotonic(), 0.0) + GROUP_MIN_S
            try:
                await asyncio.wait_for(asyncio.shield(waits), budget)
            except TimeoutError:
                self._signal(members, signal.SIGKILL)
                await waits
        for child in self.children:
            # Each server leads its own process group; what it started and left running
            # (worker pools, sandboxed programs) goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)

    def _on_signal(self) -> None:
        if self._stop.is_set():
            self.write("Second interrupt: killing all servers now.\n")
            self._signal(self.children, signal.SIGKILL)
        self._stop.set()

    async def _drain(self, child: ChildProcess) -> None:
        """Wait until the exited child's log pipe is read to its end (2 s at most)."""
        await asyncio.wait({self._pumps[child.name]}, timeout=2.0)

    def _report_failure(self, child: ChildProcess, reason: str) -> None:
        self.write(f"\nERROR: server {child.label} {reason}.\n")
        if child.tail:
            self.write(f"Last {len(child.tail)} log lines of {child.name}:\n")
            for line in child.tail:
                self.write(f"    {line}\n")
        else:
            self.write(f"{child.name} printed nothing.\n")

    def request_stop(self) -> None:
        """Stop gracefully, as on Ctrl+C; callable from any thread once :meth:`run` started."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stop.set)

    async def run(
        self, on_ready: Callable[[float], None], started: float, *, handle_signals: bool = True
    ) -> int:
        """Supervise until stopped; return the process exit code.

        ``handle_signals``: stop on SIGINT/SIGTERM (only possible in the main thread; a program
        that runs the supervisor in the background calls :meth:`request_stop` instead).
        """
        loop = asyncio.get_running_loop()
        self._loop = loop
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal)
        self._pumps = {c.name: asyncio.create_task(self._pump_logs(c)) for c in self.children}
        self._tasks = list(self._pumps.values())
        self._tasks += [asyncio.create_task(self._watch_exit(c)) for c in self.children]
        code = 0
        try:
            failed = await self._probe_health(self.children)
            if failed is not None:
                if failed.exit_code is not None:
                    await self._drain(failed)
                    self.config_error = self._reported.get(failed.name)
                    if self.config_error is not None:
                        self.write(
                            f"\nERROR: server {failed.label} did not start: its settings are "
                            "wrong (the error follows).\n"
                        )
                        code = 2
                    else:
                        self._report_failure(
                            failed, f"exited with code {failed.exit_code} during start-up"
                        )
                        code = 1
                else:
                    self._report_failure(
                        failed,
                        f"did not answer GET /health within {self.options.startup_timeout_s:.0f}s",
                    )
                    code = 1
            elif not self._stop.is_set():
                on_ready(time.monotonic() - started)
                code = await self._serve()
        finally:
            self.write(
                "Stopping servers: agents first, then models and resources servers, then "
                f"the head server (grace period {self.options.graceful_shutdown_s:.0f}s)...\n"
            )
            await self.stop_all()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for child in self.children:
                if child.sock is not None:
                    child.sock.close()
            self.write("All servers stopped.\n" if code == 0 else "")
        return code

    async def _serve(self) -> int:
        """Serve until stopped, restarting servers that die; 1 if one cannot be kept up."""
        while True:
            stop = asyncio.create_task(self._stop.wait())
            exited = asyncio.create_task(self._exited.wait())
            await asyncio.wait({stop, exited}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            exited.cancel()
            if self._stop.is_set():
                return 0
            self._exited.clear()
            for dead in [c for c in self.children if c.exit_code is not None]:
                if not await self._replace(dead):
                    return 1

    async def _replace(self, dead: ChildProcess) -> bool:
        """Start ``dead`` again within the restart policy; False when it is given up on."""
        await self._drain(dead)
        cause = exit_cause(dead.exit_code)
        if dead.respawn is None:  # the head server: rollouts do not need it
            self.write(f"\nWARNING: {dead.label} {cause}; rollouts go on without it.\n")
            self.children.remove(dead)
            self._lost.append(dead)
            return True
        delay = self.options.restarts.next_delay(dead.name)
        if delay is None:
            policy = self.options.restarts
            self._report_failure(
                dead, f"{cause}, after {policy.max_restarts} restarts in {policy.window_s:.0f}s"
            )
            return False
        self.write(f"\nserver {dead.label} {cause}; restarting it in {delay:.0f}s.\n")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)
        if self._stop.is_set():
            return True
        new = dead.respawn()
        new.respawn, new.sock, new.config_path = dead.respawn, dead.sock, dead.config_path
        new.restarts = dead.restarts + 1
        self.children[self.children.index(dead)] = new
        self._pumps[new.name] = asyncio.create_task(self._pump_logs(new))
        self._tasks += [self._pumps[new.name], asyncio.create_task(self._watch_exit(new))]
        failed = await self._probe_health([new])
        if failed is not None and new.exit_code is None:
            self._report_failure(new, "did not answer GET /health after its restart")
            return False
        if failed is None:
            self.write(f"server {new.label} is back (pid {new.pid}, restart {new.restarts}).\n")
        return True
