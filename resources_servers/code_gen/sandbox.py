"""Run untrusted Python programs from the event loop, isolated and bounded.

``Sandbox.run`` starts ``sandbox_launcher.py`` as an asyncio subprocess in a new session and
sends it a spec and the program's stdin; ``supervisor.py`` reads its output with a byte cap and
stops the launcher (which kills everything its program left) on the wall-clock deadline or the
cap. The isolation plan is chosen once (at server start-up, see ``app.py``, else on first use)
by running a trivial program under each candidate plan, strongest first (``candidate_plans``);
the first that works is used for every run and reported as ``Isolation``. ``grading.py`` builds
the programs and judges what they printed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from resources_servers.code_gen.supervisor import (
    Limits,
    ProgramRun,
    SandboxError,
    Supervisor,
    kill_processes_of,
)

LOG = logging.getLogger(__name__)
LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")


class Isolation(BaseModel):
    """What was applied to every program run (recorded on each verified row)."""

    plan: str
    namespaces: list[str]
    #: The program sees only its directory, the interpreter's prefix and the library dirs.
    private_root: bool
    #: ``/proc`` shows only the sandbox's processes (else, with a private root, there is none).
    fresh_proc: bool
    unprivileged_uid: bool
    read_only_root: bool
    private_tmp_mb: int | None
    no_new_privs: bool
    #: seccomp: ``socket()`` only for ``AF_UNIX`` (plans without a network namespace).
    network_filter: bool
    rlimits: dict[str, int]
    nproc_relative: bool
    new_session_killed_on_exit: bool = True
    leftover_processes_killed: bool = True
    empty_environment: bool = True
    python_isolated_mode: bool = True

    def blocks_network(self) -> bool:
        return "net" in self.namespaces or self.network_filter

    def summary(self) -> str:
        """One line for the start-up log."""
        parts = [f"namespaces: {','.join(self.namespaces) or 'none'}"]
        parts.append("own files + interpreter + libraries only" if self.private_root else
                     "host filesystem readable")  # fmt: skip
        parts.append("fresh /proc" if self.fresh_proc else
                     "no /proc" if self.private_root else "host /proc")  # fmt: skip
        parts.append("uid per slot" if self.unprivileged_uid else "caller's uid")
        if self.network_filter:
            parts.append("seccomp: no sockets but AF_UNIX")
        elif "net" not in self.namespaces:
            parts.append("NETWORK REACHABLE")
        return "; ".join(parts)


def candidate_plans(limits: Limits, as_root: bool) -> list[Isolation]:
    """Isolation plans, strongest first (see the README). As root every plan runs the program
    as a per-slot unprivileged uid; otherwise as the caller."""
    mb = 1 << 20
    rlimits = {
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_AS": limits.memory_mb * mb,
        "RLIMIT_FSIZE": limits.max_file_mb * mb,
        "RLIMIT_NPROC": limits.max_processes,
        "RLIMIT_NOFILE": 256,
        "RLIMIT_CORE": 0,
    }
    common: dict[str, Any] = {
        "no_new_privs": True, "rlimits": rlimits, "unprivileged_uid": as_root,
    }
    private: dict[str, Any] = {
        **common, "private_root": True, "read_only_root": True, "private_tmp_mb": limits.tmp_mb,
        "network_filter": False, "nproc_relative": False,
    }
    user = ["user", "net", "pid", "mount", "ipc", "uts"]
    host_view: dict[str, Any] = {
        **common, "namespaces": [], "private_root": False, "fresh_proc": False,
        "read_only_root": False, "private_tmp_mb": None, "nproc_relative": not as_root,
    }
    plans = [
        Isolation(plan="user-namespace", namespaces=user, fresh_proc=True, **private),
        Isolation(plan="user-namespace-no-proc", namespaces=user, fresh_proc=False, **private),
        Isolation(plan="rlimits-only", network_filter=True, **host_view),
        Isolation(plan="rlimits-only-unfiltered", network_filter=False, **host_view),
    ]
    if as_root:
        root = Isolation(plan="root-namespaces", namespaces=user[1:], fresh_proc=True, **private)
        plans.insert(0, root)
    return plans  # fmt: skip


class Sandbox:
    """Runs programs under one isolation plan, at most ``max_concurrent`` at a time."""

    def __init__(self, limits: Limits, max_concurrent: int, uid_base: int) -> None:
        self.limits = limits
        self.uid_base = uid_base
        self._slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(max_concurrent):
            self._slots.put_nowait(slot)
        self._plan: Isolation | None = None
        self._plan_lock = asyncio.Lock()

    @property
    def plan_name(self) -> str | None:
        """The plan in force, once chosen."""
        return None if self._plan is None else self._plan.plan

    async def isolation(self) -> Isolation:
        """The plan in use; the first call picks it by probing each candidate."""
        async with self._plan_lock:
            if self._plan is None:
                self._plan = await self._probe()
            return self._plan

    async def _probe(self) -> Isolation:
        probe = {"solution.py": "print(6 * 7)"}
        failures = []
        for plan in candidate_plans(self.limits, os.geteuid() == 0):
            try:
                run = await self._run_with_slot(plan, probe, ["solution.py"], b"")
            except SandboxError as exc:
                failures.append(f"{plan.plan}: {exc}")
            else:
                if run.stdout.strip() == b"42":
                    LOG.info("code_gen sandbox: isolation plan %s (%s)", plan.plan, plan.summary())
                    return plan
                failures.append(f"{plan.plan}: {run.stderr_tail.strip()}")
            LOG.warning("code_gen sandbox: isolation plan %s does not work here", failures[-1])
        raise SandboxError(
            "no isolation plan can run a trivial program on this machine; "
            + "; ".join(failures)
        )

    async def run(self, files: dict[str, str], argv: list[str], stdin: bytes) -> ProgramRun:
        """Run ``python -I <argv>`` with ``files`` in a fresh directory; wait for a free slot."""
        plan = await self.isolation()
        return await self._run_with_slot(plan, files, argv, stdin)

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[int]:
        # A queue of slot numbers is a semaphore that also says which slot (hence uid) is free.
        slot = await self._slots.get()
        try:
            yield slot
        finally:
            self._slots.put_nowait(slot)

    async def _run_with_slot(
        self, plan: Isolation, files: dict[str, str], argv: list[str], stdin: bytes
    ) -> ProgramRun:
        # Without a mount namespace the working directory is on disk; we make and remove it
        # here, since a timed-out launcher is killed before it could clean up.
        workdir = None if plan.private_root else tempfile.mkdtemp(prefix="code_gen_")
        try:
            async with self._slot() as slot:
                uid = self.uid_base + slot if plan.unprivileged_uid else None
                spec = {
                    "plan": {**plan.model_dump(), "tmp_mb": self.limits.tmp_mb},
                    "uid": uid,
                    "workdir": workdir,
                    "files": files,
                    "argv": argv,
                }
                payload = json.dumps(spec).encode()
                try:
                    return await self._launch(str(len(payload)).encode() + b"\n" + payload + stdin)
                finally:
                    if uid is not None:  # even if the launcher was killed before it could
                        await asyncio.to_thread(kill_processes_of, uid)
        finally:
            if workdir is not None:
                await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)

    async def _launch(self, stdin: bytes) -> ProgramRun:
        status_r, status_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", str(LAUNCHER), str(status_w),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, pass_fds=(status_w,),
                start_new_session=True, env={},
            )  # fmt: skip
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
        return await Supervisor(proc, status_r, self.limits).supervise(stdin)
