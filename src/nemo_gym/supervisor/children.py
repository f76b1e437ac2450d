"""Starting one server process, and collecting what it prints.

The default start is ``fork``: ``ng_run`` has already imported the server stack (FastAPI,
uvicorn, the OpenAI types), so a forked child only imports its own ``app.py`` and is serving in
milliseconds instead of re-importing everything (1.5-2 s of CPU per process). ``spawn`` runs
``python app.py`` instead, for servers that must not share the parent's interpreter state.

Each child: gets its own process group (Ctrl+C in the terminal reaches only ``ng_run``, which
stops the children in order), is sent SIGTERM if ``ng_run`` dies, and writes stdout and stderr
to a pipe that ``ng_run`` reads, prefixes and keeps the tail of.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nemo_gym.server.launch import LaunchContext, set_launch_context

LOG_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


@dataclass
class ChildProcess:
    """A server process ``ng_run`` started."""

    name: str
    server_type: str
    implementation: str
    host: str
    port: int
    pid: int
    log_fd: int
    started_at: float = field(default_factory=time.time)
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=LOG_TAIL_LINES)
    )
    exit_code: int | None = None
    config_path: str | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    #: spawn mode: the Popen object, kept so that the subprocess module does not reap the child
    #: behind the supervisor's back (it does so for dropped Popen objects still running).
    popen: subprocess.Popen[bytes] | None = None
    #: Starts this server again on the same socket (None: not restartable, the head server).
    respawn: Callable[[], ChildProcess] | None = None
    #: The listening socket ng_run keeps open for the server's whole life, restarts included.
    sock: socket.socket | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.server_type}/{self.implementation})"


def _set_process_name(name: str) -> None:
    """Name the forked process (``ps -o comm``) after its server; the cmdline stays ng_run's."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
        except (OSError, AttributeError):
            pass


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def _child_setup(log_w: int, keep_fds: set[int], name: str) -> None:
    os.setpgid(0, 0)
    _die_with_parent()
    _set_process_name(f"ng:{name}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    os.dup2(log_w, 1)
    os.dup2(log_w, 2)
    os.close(log_w)
    for fd in _open_fds():
        if fd > 2 and fd not in keep_fds:
            try:
                os.close(fd)
            except OSError:
                pass
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def _open_fds() -> list[int]:
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return []


def fork_child(
    *,
    name: str,
    server_type: str,
    implementation: str,
    sock: socket.socket,
    target: Callable[[], None],
    context: LaunchContext,
    workdir: Path | None,
    sys_path: list[str],
    withheld: set[str] | None = None,
    env: dict[str, str] | None = None,
) -> ChildProcess:
    """Fork a process that sets ``context`` and calls ``target`` (never returns in the child).

    ``withheld``: secret values the child must not hold; environment variables set to one are
    removed in the child. ``env``: variables set in the child (the Ray cluster's address).
    """
    log_r, log_w = os.pipe()
    host, port = sock.getsockname()[:2]
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(log_r)
            _child_setup(log_w, keep_fds={sock.fileno()}, name=name)
            if workdir is not None:
                os.chdir(workdir)
            sys.path[:0] = sys_path
            for key in [k for k, v in os.environ.items() if withheld and v in withheld]:
                del os.environ[key]
            os.environ.update(env or {})
            set_launch_context(context)
            target()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int) and exc.code is not None:
                sys.stderr.write(f"{exc.code}\n")
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(log_w)
    return ChildProcess(name, server_type, implementation, host, port, pid, log_r)


def run_entrypoint(path: Path) -> Callable[[], None]:
    """A target that runs ``path`` as ``__main__``, as ``python app.py`` would."""

    def target() -> None:
        sys.argv = [str(path)]
        runpy.run_path(str(path), run_name="__main__")

    return target


def spawn_child(
    *,
    name: str,
    server_type: str,
    implementation: str,
    sock: socket.socket,
    entrypoint: Path,
    config: dict[str, Any],
    graceful_shutdown_s: float,
    env_path: list[str],
    withheld: set[str] | None = None,
    python: str | None = None,
    extra_env: dict[str, str] | None = None,
    module: str | None = None,
) -> ChildProcess:
    """Start ``python <entrypoint>`` with the launch context in environment variables.

    ``withheld``: secret values the child must not hold; environment variables set to one are
    not passed on. ``python``: the interpreter (a server's own environment, ``venvs.py``).
    ``extra_env``: variables added (the Ray cluster's address). ``module``: run
    ``python -m module`` in the entrypoint's folder instead (a replicated instance's placement).
    """
    log_r, log_w = os.pipe()
    host, port = sock.getsockname()[:2]
    env = {k: v for k, v in os.environ.items() if not (withheld and v in withheld)}
    env.update(
        {
            **(extra_env or {}),
            "NEMO_GYM_CONFIG_DICT": yaml.safe_dump(config),
            "NEMO_GYM_CONFIG_PATH": name,
            "NEMO_GYM_LISTEN_FD": str(sock.fileno()),
            "NEMO_GYM_GRACEFUL_SHUTDOWN_S": str(graceful_shutdown_s),
            "PYTHONPATH": os.pathsep.join([*env_path, env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            "PYTHONUNBUFFERED": "1",
        }
    )
    proc = subprocess.Popen(
        [python or sys.executable, "-m", module]
        if module
        else [python or sys.executable, str(entrypoint)],
        cwd=entrypoint.parent,
        env=env,
        stdout=log_w,
        stderr=log_w,
        stdin=subprocess.DEVNULL,
        pass_fds=(sock.fileno(),),
        start_new_session=True,
    )
    os.close(log_w)
    return ChildProcess(name, server_type, implementation, host, port, proc.pid, log_r, popen=proc)
