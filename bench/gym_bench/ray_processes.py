"""ng_run on a local Ray cluster for ``ray_scale_bench.py``, and which process is which.

:class:`RayNgRun` is :class:`~.processes.NgRun` with the cluster's address and token, the
placement overlay (:func:`write_placement`: the agent and the resources server as ``replicas``
Ray actors on ``cpu_node``, the model server as one actor on ``model_node``) and a longer
start-up deadline. Its :meth:`RayNgRun.gym_processes` labels every process of the run as
``<kind>/<role>``, which ``run_collect`` reads CPU time of:

- ``ng_run/supervisor``; ``head/server`` (the head server, a child of ng_run);
- ``<kind>/placement``: the placement process of a placed instance (``ray_support.driver``, a
  child of ng_run) that answers the instance's own address and forwards to a replica;
- ``<kind>/worker[i]``: the Ray worker process hosting replica ``i``'s actor (a child of the
  node's raylet; ``actor_pid`` of ``GET /replicas``); ``<kind>/server[i]``: the server the
  actor runs (``pid`` of ``GET /replicas``);
- ``ray/<name>[pid]``: every other process of the cluster's session (gcs_server, raylets,
  dashboard and runtime-env agents, monitors, idle workers): Ray's own.

``kind`` is ``agent``, ``resources`` or ``model``. Neighbours: ``ray_cluster`` (the cluster),
``ray_scale`` (the runs).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from .common import CONFIG_PATHS, http_get_json, rel
from .processes import NgRun
from .ray_cluster import LocalRayCluster
from .sampling import Sampler

AGENT_INSTANCE = ("example_single_tool_call_simple_agent", "responses_api_agents", "simple_agent")
RESOURCES_INSTANCE = ("example_single_tool_call", "resources_servers", "example_single_tool_call")
MODEL_INSTANCE = ("policy_model", "responses_api_models", "openai_model")
KIND_OF_SERVER_TYPE = {
    "responses_api_agents": "agent",
    "resources_servers": "resources",
    "responses_api_models": "model",
}
PLACEMENT_MODULE = "nemo_gym.ray_support.driver"


def write_placement(path: Path, replicas: int) -> Path:
    """The overlay that places the weather environment's three instances on the cluster."""
    cpu = {"num_cpus": 1, "resources": {"cpu_node": 1}}
    model = {"num_cpus": 0, "resources": {"model_node": 1}}
    overlay: dict[str, Any] = {}
    for (name, section, impl), count, options in (
        (AGENT_INSTANCE, replicas, cpu),
        (RESOURCES_INSTANCE, replicas, cpu),
        (MODEL_INSTANCE, 1, model),
    ):
        overlay[name] = {section: {impl: {"num_replicas": count, "ray_actor_options": options}}}
    path.write_text(yaml.safe_dump(overlay, sort_keys=False), encoding="utf-8")
    return path


def _environ(proc: psutil.Process, key: str) -> str | None:
    try:
        return proc.environ().get(key)
    except psutil.Error:
        return None


def _listens_on(proc: psutil.Process, port: int) -> bool:
    """``proc`` holds a socket listening on ``port`` (the head server is not a row of
    ``/server_instances``; it is the child of ng_run listening on the head port)."""
    try:
        conns = proc.net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)


class RayNgRun(NgRun):
    """ng_run joined to ``cluster`` with the placement overlay ``overlay``."""

    startup_deadline_s = 300.0

    def __init__(
        self,
        out: Path,
        fake_port: int,
        head_port: int,
        cluster: LocalRayCluster,
        overlay: Path,
        replicas: int,
    ) -> None:
        super().__init__(out, fake_port, head_port)
        self.replica_count = replicas
        self.cluster = cluster
        self.overlay = overlay
        self.extra_env = dict(cluster.env)
        self.replicas: list[dict[str, Any]] = []
        self.labelled: dict[str, psutil.Process] = {}

    def command(self) -> list[str]:
        base = [a for a in super().command() if not a.startswith("+config_paths=")]
        return [
            base[0],
            f"+config_paths=[{CONFIG_PATHS},{rel(self.overlay)}]",
            *base[1:],
            f"+ray_head_node_address={self.cluster.address}",
            "+startup_timeout_s=240",
        ]

    def start(self, sampler: Sampler) -> dict[str, Any]:
        started = super().start(sampler)
        # /server_instances lists a placed instance's replicas as they register, so it reads
        # all healthy once one replica of each is up; ng_run's line waits for all of them.
        want = 2 * self.replica_count + 1
        deadline = time.monotonic() + self.startup_deadline_s
        while self.reported_s is None or len(self._replicas()) < want:
            if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                raise RuntimeError(f"not all {want} replicas registered; see {self.out}")
            time.sleep(0.1)
        rows = http_get_json(f"http://127.0.0.1:{self.head_port}/server_instances")
        started["server_instances_after_start"] = [
            {k: r.get(k) for k in ("name", "replica", "pid", "node_id", "status")} for r in rows
        ]
        self.replicas = self._replicas()
        started["replicas"] = [
            {k: r[k] for k in ("instance", "replica", "pid", "actor_pid", "node_id")}
            for r in self.replicas
        ]
        self.labelled = self.classify()
        for label, proc in self.labelled.items():
            sampler.labels[proc.pid] = label
        for r in self.replicas:  # the workers are the raylet's children, not ng_run's
            sampler.set_root(f"worker {r['instance']}[{r['replica']}]", int(r["actor_pid"]))
            sampler.labels[int(r["actor_pid"])] = self._label(r, "worker")
            sampler.labels[int(r["pid"])] = self._label(r, "server")
        return started

    def _replicas(self) -> list[dict[str, Any]]:
        return list(http_get_json(f"http://127.0.0.1:{self.head_port}/replicas"))

    def kind_of(self, name: str) -> str:
        for row in self.instances:
            if row.get("name") == name:
                return KIND_OF_SERVER_TYPE.get(str(row.get("server_type")), "other")
        return "other"

    def _label(self, replica: dict[str, Any], role: str) -> str:
        return f"{self.kind_of(str(replica['instance']))}/{role}[{replica['replica']}]"

    def replica_pids(self) -> set[int]:
        """The workers hosting the replicas and the servers they run (and their children)."""
        pids: set[int] = set()
        for r in self.replicas:
            for pid in (int(r["actor_pid"]), int(r["pid"])):
                pids.add(pid)
                try:
                    pids.update(c.pid for c in psutil.Process(pid).children(recursive=True))
                except psutil.Error:
                    pass
        return pids

    def classify(self) -> dict[str, psutil.Process]:
        """Every process of the run and of the cluster, labelled ``<kind>/<role>``."""
        assert self.proc is not None
        main = psutil.Process(self.proc.pid)
        out: dict[str, psutil.Process] = {"ng_run/supervisor": main}
        for child in main.children(recursive=True):
            try:
                cmdline = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if _listens_on(child, self.head_port):
                out["head/server"] = child
            elif PLACEMENT_MODULE in cmdline:
                name = _environ(child, "NEMO_GYM_CONFIG_PATH") or "?"
                out[f"{self.kind_of(name)}/placement"] = child
            else:
                out[f"ng_run/other[{child.pid}]"] = child
        for r in self.replicas:
            for role, key in (("worker", "actor_pid"), ("server", "pid")):
                try:
                    out[self._label(r, role)] = psutil.Process(int(r[key]))
                except psutil.Error:
                    pass
        mine = self.replica_pids()
        for proc in psutil.Process(self.cluster.pid).children(recursive=True):
            if proc.pid in mine:
                continue
            try:
                name = proc.name()
            except psutil.Error:
                continue
            out[f"ray/{name}[{proc.pid}]"] = proc
        try:
            out[f"ray/cluster_utils[{self.cluster.pid}]"] = psutil.Process(self.cluster.pid)
        except psutil.Error:
            pass
        return out

    def gym_processes(self) -> dict[str, psutil.Process]:
        """As labelled by :meth:`classify` (read again: Ray starts and ends idle workers)."""
        self.labelled = self.classify()
        return dict(self.labelled)
