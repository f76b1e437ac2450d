"""The Ray scale benchmark (``bench/ray_scale_bench.py``): the scale benchmark's workload on a
local Ray cluster of one or two nodes, with 1 or 2 replicas of the agent and of the resources
server.

For one configuration (``nodes`` x ``replicas``) it starts the cluster (``ray_cluster``), then
for each fake-model latency the fake endpoint and ng_run joined to the cluster
(``ray_processes.RayNgRun``), and runs ``ng_collect_rollouts`` at each level
(``collection.run_collect``; rows as ``scale.rows_for``). Two samplers keep the peak summed RSS:
one of every Gym process (ng_run and its children, the collector, and the Ray workers hosting
the replicas with the servers they run), one of Ray's own processes. CPU time per rollout is
grouped by process kind (collector, agent, resources, model, head, ng_run, ray) and, for the
placed kinds, by role (placement process, Ray worker, server). With 2 replicas, each replica
server's share of its kind's server CPU shows that both served rollouts.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from .collection import run_collect, write_input
from .common import free_port, log
from .processes import start_fake, stop_process
from .ray_cluster import LocalRayCluster
from .ray_processes import RayNgRun, write_placement
from .sampling import Sampler
from .scale import rows_for

KINDS = ("collector", "agent", "resources", "model", "head", "ng_run", "ray")
ROLES = ("placement", "worker", "server")


def _kind_role(label: str) -> tuple[str, str]:
    if label == "ng_collect_rollouts":
        return "collector", "cli"
    kind, _, role = label.partition("/")
    return kind, re.sub(r"\[.*$", "", role)


def cpu_split(run: dict[str, Any]) -> dict[str, Any]:
    """CPU ms per rollout by kind, by kind/role, and each replica server's share of its kind."""
    by_kind: dict[str, float] = {}
    by_role: dict[str, float] = {}
    servers: dict[str, dict[str, float]] = {}
    for label, seconds in run["cpu_s"].items():
        if seconds is None or "after" in label:
            continue
        kind, role = _kind_role(label)
        by_kind[kind] = by_kind.get(kind, 0.0) + seconds
        if kind in ("agent", "resources", "model"):
            by_role[f"{kind}/{role}"] = by_role.get(f"{kind}/{role}", 0.0) + seconds
            if role == "server":
                servers.setdefault(kind, {})[label] = seconds
    rows = run["rows"]
    shares = {
        kind: {
            label: round(s / sum(each.values()), 3) if sum(each.values()) else None
            for label, s in sorted(each.items())
        }
        for kind, each in servers.items()
    }
    return {
        "cpu_ms_per_rollout": {k: round(v * 1000 / rows, 3) for k, v in sorted(by_kind.items())},
        "cpu_ms_per_rollout_by_role": {
            k: round(v * 1000 / rows, 3) for k, v in sorted(by_role.items())
        },
        "replica_server_cpu_share": shares,
        "gym_cpu_ms_per_rollout": round(
            sum(v for k, v in by_kind.items() if k != "ray") * 1000 / rows, 3
        ),
    }


def replica_processes(ngrun: RayNgRun) -> list[psutil.Process]:
    """The replicas' workers and servers (taken before ng_run stops: a pid may be reused)."""
    procs = []
    for r in ngrun.replicas:
        for key in ("actor_pid", "pid"):
            try:
                procs.append(psutil.Process(int(r[key])))
            except psutil.Error:
                pass
    return procs


def replicas_left(procs: list[psutil.Process], deadline_s: float = 15.0) -> list[str]:
    """Those of ``procs`` still running ``deadline_s`` after ng_run stopped (``name[pid]``;
    killed now). Stopping ng_run stops its placement processes, which stop their actors and
    the servers the actors run."""
    _, alive = psutil.wait_procs(procs, timeout=deadline_s)
    left = []
    for proc in alive:
        try:
            left.append(f"{proc.name()}[{proc.pid}]")
            proc.kill()
        except psutil.Error:
            pass
    if left:
        log(f"replica processes still running {deadline_s:.0f}s after ng_run stopped: {left}")
    return left


def one_latency(
    args: argparse.Namespace,
    out: Path,
    cluster: LocalRayCluster,
    overlay: Path,
    replicas: int,
    latency_s: float,
) -> dict[str, Any]:
    """Every level against one ng_run on ``cluster`` and one fake answering after ``latency_s``."""
    gym = Sampler(0.1)
    ray = Sampler(0.1)
    fake: subprocess.Popen[str] | None = None
    ngrun: RayNgRun | None = None
    result: dict[str, Any] = {"latency_s": latency_s, "levels": {}}
    gym.start()
    ray.set_root("ray cluster", cluster.pid)
    ray.start()

    def phase(name: str) -> None:
        gym.set_phase(name)
        ray.set_phase(name)

    try:
        fake, fake_port = start_fake(out, ("--latency-s", str(latency_s)))
        gym.exclude.add(fake.pid)
        head_port = free_port()
        while head_port == fake_port:
            head_port = free_port()
        ngrun = RayNgRun(out, fake_port, head_port, cluster, overlay, replicas)
        phase("startup")
        result["startup"] = ngrun.start(gym)
        ray.exclude.update(ngrun.replica_pids())
        log(f"ng_run: all servers healthy in {result['startup']['ng_run_reported_s']} s")
        for level in args.levels:
            rows = rows_for(level, latency_s, args)
            input_path = out / f"input_{rows}.jsonl"
            if not input_path.exists():
                write_input(input_path, rows)
            name = f"l{latency_s}_p{level}"
            phase(name)
            log(f"latency {latency_s}s: {rows} rows at {level} in flight")
            run = run_collect(
                ngrun=ngrun,
                sampler=gym,
                fake=fake,
                fake_port=fake_port,
                input_path=input_path,
                output_path=out / f"ray_scale_{name}.jsonl",
                rows=rows,
                parallel=level,
                out=out,
                deadline_s=args.deadline_s,
            )
            time.sleep(0.2)  # the last samples of this level
            run["memory"] = gym.phase_stats(name)
            run["ray_memory"] = ray.phase_stats(name)
            run.update(cpu_split(run))
            result["levels"][str(level)] = run
            log(
                f"latency {latency_s}s p={level}: {run['rollouts_per_s_excl_startup']} "
                f"rollouts/s, p50/p99 {run['elapsed_p50_s']}/{run['elapsed_p99_s']} s, "
                f"statuses {run['statuses']} {run['failure_kinds'] or ''}, peak RSS Gym "
                f"{run['memory'].get('peak_rss_sum_mb')} MB, Ray "
                f"{run['ray_memory'].get('peak_rss_sum_mb')} MB, cpu ms/rollout "
                f"{run['cpu_ms_per_rollout']}, server shares {run['replica_server_cpu_share']}"
            )
            for kind, message in run["failure_examples"].items():
                log(f"  e.g. {kind}: {message}")
        phase("idle")
    finally:
        if ngrun is not None:
            phase("shutdown")
            procs = replica_processes(ngrun)
            result["shutdown"] = ngrun.stop()
            result["shutdown"]["replica_processes_left"] = replicas_left(procs)
        if fake is not None:
            stop_process(fake, signal.SIGTERM, 5.0)
        gym.stop()
        ray.stop()
    return result


def one_config(
    args: argparse.Namespace, out: Path, nodes: int, replicas: int, latencies: list[float]
) -> dict[str, Any]:
    """Start a ``nodes``-node cluster, run every latency with ``replicas`` replicas, stop it."""
    sub = out / f"n{nodes}_r{replicas}"
    sub.mkdir(parents=True, exist_ok=True)
    overlay = write_placement(sub / "placement.yaml", replicas)
    t0 = time.perf_counter()
    cluster = LocalRayCluster(nodes, sub / "ray_cluster.log")
    result: dict[str, Any] = {
        "nodes": nodes,
        "replicas": replicas,
        "cluster_start_s": round(time.perf_counter() - t0, 2),
        "raylets": cluster.raylets,
        "latencies": [],
    }
    log(f"{nodes}-node cluster at {cluster.address} up in {result['cluster_start_s']} s")
    try:
        for latency in latencies:
            result["latencies"].append(one_latency(args, sub, cluster, overlay, replicas, latency))
    finally:
        left = cluster.stop()
        result["cluster_left_running"] = left
        if left:
            log(f"the cluster left {len(left)} processes running (killed now): {left}")
    return result
