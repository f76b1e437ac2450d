"""One replica of a server instance: a Ray actor that runs and watches the server process.

The actor binds a listening socket on its node's address (port chosen by the OS), starts the
instance's ``app.py`` as ``ng_run``'s ``spawn`` mode does (the config with this replica's host
and port, the socket inherited), waits for its ``/health``, and registers it with the head
server (``server.replicas.ReplicaInfo``). The server process dies with the actor's process
(``PR_SET_PDEATHSIG``); when the server exits on its own, the actor's process exits too, so
that Ray starts the actor again (``max_restarts``), which starts a new server and registers it
again. Server output goes to the actor's stdout, which Ray forwards to the placement driver and
so to ``ng_run``'s log. A server running as an actor is the same server as without Ray: one
code path, one ``app.py``.

The class imports nothing of Ray at module level; ``driver`` wraps it with ``ray.remote``.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from nemo_gym.core.errors import UpstreamError
from nemo_gym.ray_support.offload import import_ray
from nemo_gym.server.client import get_sync, request_sync
from nemo_gym.server.replicas import ReplicaInfo

_PR_SET_PDEATHSIG = 1
REREGISTER_S = 10.0


class ReplicaSpec(BaseModel):
    """What a replica actor is created with."""

    instance: str
    replica: int
    config: dict[str, Any]
    entrypoint: str
    workdir: str
    head_url: str
    graceful_shutdown_s: float = 30.0
    startup_timeout_s: float = 60.0


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _with_address(config: dict[str, Any], instance: str, host: str, port: int) -> dict[str, Any]:
    out = copy.deepcopy(config)
    (impls,) = out[instance].values()
    (settings,) = impls.values()
    settings["host"], settings["port"] = host, port
    return out


class ReplicaServer:
    """The Ray actor of one replica (see the module docstring)."""

    def __init__(self, spec: ReplicaSpec) -> None:
        ray = import_ray()

        self.spec = spec
        self._stopping = False
        host = str(ray.util.get_node_ip_address())
        node_id = ray.get_runtime_context().get_node_id()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(4096)
        self.sock.set_inheritable(True)
        port = int(self.sock.getsockname()[1])
        env = {
            **os.environ,
            "NEMO_GYM_CONFIG_DICT": yaml.safe_dump(
                _with_address(spec.config, spec.instance, host, port)
            ),
            "NEMO_GYM_CONFIG_PATH": spec.instance,
            "NEMO_GYM_LISTEN_FD": str(self.sock.fileno()),
            "NEMO_GYM_GRACEFUL_SHUTDOWN_S": str(spec.graceful_shutdown_s),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, spec.entrypoint],
            cwd=spec.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            pass_fds=(self.sock.fileno(),),
            start_new_session=True,
            preexec_fn=_die_with_parent,  # the server goes when the actor's process goes
        )
        url = f"http://{host}:{port}"
        self.info = ReplicaInfo(
            instance=spec.instance,
            replica=spec.replica,
            url=url,
            host=host,
            port=port,
            pid=self.proc.pid,
            node_id=node_id,
            node_ip=host,
            actor_pid=os.getpid(),
            start_time=time.time(),
        )
        self._wait_healthy()
        self._register()
        threading.Thread(target=self._watch, name="replica-watch", daemon=True).start()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.spec.startup_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"replica {self.spec.replica} of {self.spec.instance!r} exited with code "
                    f"{self.proc.returncode} during start-up (its log is above)"
                )
            try:
                if get_sync(f"{self.info.url}/health", timeout_s=2.0).status == 200:
                    return
            except UpstreamError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(
                    f"replica {self.spec.replica} of {self.spec.instance!r} did not answer "
                    f"GET /health within {self.spec.startup_timeout_s:.0f}s"
                )
            time.sleep(0.05)

    def _register(self) -> bool:
        try:
            resp = request_sync(
                "POST",
                f"{self.spec.head_url}/replicas",
                json=self.info.model_dump(mode="json"),
                timeout_s=5.0,
            )
        except UpstreamError as exc:
            sys.stderr.write(f"could not register with the head server: {exc}\n")
            return False
        if not resp.ok:
            sys.stderr.write(f"the head server refused the registration: HTTP {resp.status}\n")
        return resp.ok

    def _watch(self) -> None:
        """Exit this process when the server exits (Ray restarts the actor); re-register now
        and then, so that a table lost with the head server is filled again."""
        while True:
            try:
                self.proc.wait(REREGISTER_S)
            except subprocess.TimeoutExpired:
                self._register()
                continue
            if not self._stopping:
                sys.stderr.write(
                    f"replica {self.spec.replica} of {self.spec.instance!r}: the server exited "
                    f"with code {self.proc.returncode}; Ray starts the replica again\n"
                )
                sys.stderr.flush()
                os._exit(1)
            return

    def describe(self) -> dict[str, Any]:
        """This replica's registration (what ``/replicas`` lists)."""
        return self.info.model_dump()

    def stop(self) -> int | None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after the grace); its exit code."""
        self._stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.spec.graceful_shutdown_s + 2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # what the server left running
        self.sock.close()
        return self.proc.returncode


def entrypoint_of(settings: dict[str, Any], workdir: Path) -> str:
    """The server file a replica runs."""
    return str(workdir / str(settings["entrypoint"]))
