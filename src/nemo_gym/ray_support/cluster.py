"""Starting or joining the Ray cluster a run uses, and stopping what was started.

``ray_head_node_address`` (NeMo Gym's key) is either the address of a running cluster
(``host:port`` of its GCS, or ``ray://host:10001``), which is joined, or ``auto``, which starts
a one-node cluster on 127.0.0.1 (no dashboard) as ``ray start --head --block`` in its own
session; :meth:`RayCluster.shutdown` stops that session, every Ray process in it included.
Nothing here imports Ray: the processes that join get the address in ``RAY_ADDRESS``
(:meth:`RayCluster.env`), so a plain ``ray.init()`` or the first ``.remote()`` call in a server
joins the same cluster. A cluster on 127.0.0.1 is local: every process that joins it also gets
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, without which Ray replaces 127.0.0.1 by the machine's
network address and cannot reach it. A cluster started here uses Ray's token authentication
with a token made for it (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``, in the same environment),
so neither a token left in ``~/.ray`` by another program nor anyone else on the machine can
interfere with it.

Neighbours: ``supervisor.startup`` calls :func:`ensure_cluster` for ``ng_run``; the replica
driver (``driver.py``) and sharded collection call :func:`connect` to become Ray drivers.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_gym.core.errors import ConfigError, GymError
from nemo_gym.ray_support.offload import import_ray

#: The config key (NeMo Gym's name) and the value that starts a local cluster.
ADDRESS_KEY = "ray_head_node_address"
AUTO = "auto"
LOCAL_CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
_STARTED_MARKER = "Ray runtime started"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_PR_SET_PDEATHSIG = 1


def _host_port(address: str) -> tuple[str, int]:
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"must be `auto` or a Ray address such as 10.0.0.5:6379 or ray://10.0.0.5:10001 "
            f"(got {address!r})",
            key=ADDRESS_KEY,
        )
    return host, int(port)


@dataclass
class RayCluster:
    """The cluster a run uses.

    Attributes:
        address: what ``ray.init(address=...)`` takes (``host:port`` or ``ray://host:port``).
        started: True when this process started the cluster (and :meth:`shutdown` stops it).
    """

    address: str
    started: bool = False
    process: subprocess.Popen[bytes] | None = None
    temp_dir: Path | None = None
    auth_env: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """The cluster listens on the loopback address (every node on this machine)."""
        return _host_port(self.address)[0] in _LOOPBACK

    def env(self) -> dict[str, str]:
        """Environment variables that make ``ray.init()`` in a process join this cluster."""
        local = LOCAL_CLUSTER_ENV if self.local else {}
        return {"RAY_ADDRESS": self.address, **local, **self.auth_env}

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop the cluster if this process started it (every process of it); else nothing."""
        proc = self.process
        if proc is None:
            return
        self.process = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its node on SIGTERM
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        kill_session(proc.pid)
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def session_members(sid: int) -> list[int]:
    """PIDs of the processes whose session id is ``sid`` (Linux ``/proc``; else empty)."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def kill_session(sid: int, deadline_s: float = 10.0) -> None:
    """SIGKILL every process of session ``sid`` (Ray workers leave the node's process group,
    not its session) and wait until none is left."""
    end = time.monotonic() + deadline_s
    while (members := session_members(sid)) and time.monotonic() < end:
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _ray_executable() -> str:
    found = Path(sys.executable).parent / "ray"
    if found.is_file():
        return str(found)
    on_path = shutil.which("ray")
    if on_path is None:
        raise ConfigError(
            f"{ADDRESS_KEY}: auto needs Ray; install the extra: pip install 'nemo-gym[ray]'",
            key=ADDRESS_KEY,
        )
    return on_path


def _start_node(
    args: list[str],
    log_path: Path,
    env: dict[str, str],
    num_cpus: float | None,
    resources: dict[str, float] | None,
    timeout_s: float,
) -> subprocess.Popen[bytes]:
    """Run ``ray start ... --block`` in its own session; return once the node is up."""
    import json

    cmd = [
        _ray_executable(),
        "start",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--disable-usage-stats",
        f"--dashboard-agent-listen-port={_free_port()}",  # not 52365: other clusters may run
        *args,
    ]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus:g}")
    if resources:
        cmd.append(f"--resources={json.dumps(resources)}")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **LOCAL_CLUSTER_ENV, **env},
            start_new_session=True,
            preexec_fn=_die_with_parent,  # the node stops if its starter is killed
        )
    deadline = time.monotonic() + timeout_s
    while _STARTED_MARKER not in (text := log_path.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            kill_session(proc.pid)
            tail = "\n    ".join(text.strip().splitlines()[-15:])
            why = "exited" if proc.returncode is not None else f"did not start in {timeout_s:.0f}s"
            raise GymError(f"a local Ray node {why}; `ray start` printed:\n    {tail}")
        time.sleep(0.1)
    return proc


def start_local_cluster(
    *,
    num_cpus: float | None = None,
    resources: dict[str, float] | None = None,
    timeout_s: float = 120.0,
) -> RayCluster:
    """Start a one-node cluster on 127.0.0.1 and wait until it accepts drivers.

    Raises:
        GymError: Ray did not start within ``timeout_s`` (with the tail of its output).
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="ng-ray-", dir="/tmp"))  # short: socket path limit
    port = _free_port()
    auth_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    args = ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp_dir}"]
    try:
        proc = _start_node(
            args, temp_dir / "ray_start.log", auth_env, num_cpus, resources, timeout_s
        )
    except GymError:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return RayCluster(f"127.0.0.1:{port}", True, proc, temp_dir, auth_env)


def ensure_cluster(address: str, **local_options: Any) -> RayCluster:
    """Join the cluster at ``address``, or start a local one for ``auto``.

    Joining only checks that something listens at the address (Ray is not imported here).
    ``local_options`` go to :func:`start_local_cluster` (and are not used when joining).

    Raises:
        ConfigError: ``address`` is malformed or nothing listens there.
        GymError: a local cluster did not start.
    """
    address = str(address).strip()
    if address == AUTO:
        return start_local_cluster(**local_options)
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=5.0).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            f"`ray start --head` or set {ADDRESS_KEY}: auto",
            key=ADDRESS_KEY,
        ) from None
    return RayCluster(address)


def shutdown(cluster: RayCluster | None) -> None:
    """Stop ``cluster`` if this process started it (see :meth:`RayCluster.shutdown`)."""
    if cluster is not None:
        cluster.shutdown()


def connect(cluster: RayCluster, **init_kwargs: Any) -> None:
    """Make this process a driver of ``cluster`` (imports Ray; call only when Ray is used)."""
    os.environ.update(cluster.env())  # read when Ray is imported
    ray = import_ray()

    if cluster.local:
        init_kwargs.setdefault("_node_ip_address", "127.0.0.1")
    ray.init(address=cluster.address, ignore_reinit_error=True, **init_kwargs)
