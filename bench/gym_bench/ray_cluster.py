"""A local Ray cluster of one or two nodes on 127.0.0.1 for ``ray_scale_bench.py``, run in a
process of its own so that the harness never imports Ray.

:class:`LocalRayCluster` starts ``python -m gym_bench.ray_cluster --nodes N`` in a new session
with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and a token of its own (``RAY_AUTH_MODE=token``).
That process (:func:`main`) runs Ray's ``cluster_utils.Cluster``: with one node, the head offers
both custom resources ``model_node`` and ``cpu_node``; with two, the head offers ``model_node``
and a second node (its own raylet) ``cpu_node``, as in ``tests/ray/two_nodes.py``. It prints
``ADDRESS <gcs address>``, ``NODE <head|cpu> <raylet pid>`` per node and ``READY``, and shuts
the cluster down on ``quit`` (or when stdin closes), then prints ``STOPPED``.
:meth:`LocalRayCluster.stop` then kills whatever of its session is left and reports it.

Neighbours: ``ray_scale`` starts ng_run against :attr:`LocalRayCluster.address` and sorts the
cluster's processes into Ray's own and the replicas' (``ray_processes``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from .common import ROOT, child_env, log

BENCH_DIR = Path(__file__).resolve().parents[1]
#: Logical CPUs and custom resources per node; replicas ask for {num_cpus: 1, cpu_node: 1}.
CPU_NODE: dict[str, Any] = {"num_cpus": 4, "resources": {"cpu_node": 4}}
MODEL_NODE: dict[str, Any] = {"num_cpus": 1, "resources": {"model_node": 1}}
ONE_NODE: dict[str, Any] = {"num_cpus": 5, "resources": {"model_node": 1, "cpu_node": 4}}


class LocalRayCluster:
    """The cluster process (see the module docstring), started by the constructor."""

    def __init__(self, nodes: int, log_path: Path, timeout_s: float = 180.0) -> None:
        self.env = {
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
        }
        path = os.pathsep.join(p for p in (str(BENCH_DIR), os.environ.get("PYTHONPATH")) if p)
        self.log_path = log_path
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "gym_bench.ray_cluster", "--nodes", str(nodes)],
            cwd=ROOT,
            env=child_env({**self.env, "PYTHONPATH": path}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.address = self.wait("ADDRESS ", timeout_s).split()[1]
            self.raylets: dict[str, int] = {}
            for _ in range(nodes):
                _, role, pid = self.wait("NODE ", timeout_s, skip=len(self.raylets)).split()
                self.raylets[role] = int(pid)
            self.wait("READY", timeout_s)
        except BaseException:
            self.stop()
            raise
        self.env["RAY_ADDRESS"] = self.address

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with open(self.log_path, "a", encoding="utf-8") as fh:
            for line in self.popen.stdout:
                fh.write(line)
                fh.flush()
                self.lines.append(line.rstrip("\n"))

    def wait(self, prefix: str, timeout_s: float, skip: int = 0) -> str:
        """The ``skip``-th line (0-based) starting with ``prefix``, waiting up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            hits = [x for x in list(self.lines) if x.startswith(prefix)]
            if len(hits) > skip:
                return hits[skip]
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        tail = "\n    ".join(self.lines[-20:])
        raise RuntimeError(f"the Ray cluster did not print {prefix!r}; it printed:\n    {tail}")

    def stop(self, timeout_s: float = 60.0) -> list[str]:
        """Shut the cluster down; the processes of its session still alive after it exited
        (``name[pid]``, killed now). Empty when Ray stopped every process of its own."""
        from nemo_gym.ray_support.cluster import kill_session, session_members

        if self.popen.poll() is None and self.popen.stdin is not None:
            try:
                self.popen.stdin.write("quit\n")
                self.popen.stdin.flush()
                self.popen.wait(timeout_s)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                log(f"the Ray cluster (pid {self.pid}) did not stop in {timeout_s:.0f}s; killing")
                self.popen.kill()
                self.popen.wait()
        left = [describe(p) for p in session_members(self.pid) if p != self.pid]
        kill_session(self.pid)
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        return left


def describe(pid: int) -> str:
    """``name[pid]`` of a process (its pid alone once it is gone)."""
    try:
        return f"{psutil.Process(pid).name()}[{pid}]"
    except psutil.Error:
        return f"[{pid}]"


def main() -> None:
    """The cluster process: start the nodes, print their lines, shut down on ``quit``."""
    ap = argparse.ArgumentParser(description="a local Ray cluster for ray_scale_bench.py")
    ap.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    nodes = ap.parse_args().nodes

    from ray.cluster_utils import Cluster

    cluster: Any
    head = ONE_NODE if nodes == 1 else MODEL_NODE
    cluster = Cluster(initialize_head=True, head_node_args={**head, "include_dashboard": False})
    added = [cluster.add_node(**CPU_NODE)] if nodes == 2 else []
    print(f"ADDRESS {cluster.address}", flush=True)
    for role, node in (("head", cluster.head_node), *(("cpu", n) for n in added)):
        print(f"NODE {role} {node.all_processes['raylet'][0].process.pid}", flush=True)
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    cluster.shutdown()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
