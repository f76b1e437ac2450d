#!/usr/bin/env python
"""Ray scale benchmark: the scale benchmark's workload on a local 1- or 2-node Ray cluster with
1 or 2 replicas of the agent and of the resources server.

Not a test: it measures. From the repo root, with the project's venv:

    .venv/bin/python bench/ray_scale_bench.py [--nodes 1,2] [--replicas 1,2]
                                              [--levels 64,1024] [--latencies 0,2]
                                              [--waves 2] [--min-rows 2000]
                                              [--out bench/out/ray_scale]

For each configuration (nodes x replicas) it starts a Ray ``cluster_utils`` cluster on 127.0.0.1
in a process of its own (one node offering ``model_node`` and ``cpu_node``, or a head node with
``model_node`` and a second node with ``cpu_node``), and for each fake-model latency the fake
endpoint (``nemo_gym.testing.fake_openai --latency-s``) and ng_run with
``+ray_head_node_address=<address>`` and an overlay that places the agent and the resources
server as ``replicas`` actors on ``cpu_node`` and the model server as one actor on
``model_node``. At each level ``ng_collect_rollouts +num_samples_in_parallel=<level>`` runs over
``max(waves x level, min_rows)`` rows (``min_rows`` only at 0 s). Per level: rollouts/s without
the CLI start-up, p50/p99 of ``_ng_elapsed_s``, failed rows by kind, the peak summed RSS of every
Gym process (the Ray workers hosting replicas and their servers included) and, apart, of Ray's
own processes; CPU milliseconds per rollout of each process kind (collector, agent, resources,
model, head, ng_run, ray), the placed kinds split into placement process / Ray worker / server;
each replica server's share of its kind's server CPU; the cores other processes took. The cluster
is shut down after each configuration and any process of it left is killed and reported.
``--report a.json [b.json ...]`` re-prints a's tables, with the rollouts/s of the same rows in
b... in brackets. The harness is ``gym_bench/ray_scale.py``; results go to
``<out>/ray_scale_results.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from gym_bench.common import ROOT, log, machine_info  # noqa: E402
from gym_bench.ray_scale import KINDS, ROLES, one_config  # noqa: E402


def _shares(run: dict[str, Any]) -> str:
    parts = []
    for kind, each in run["replica_server_cpu_share"].items():
        if len(each) > 1:
            parts.append(f"{kind} " + "/".join(f"{100 * (s or 0):.0f}" for s in each.values()))
    return ", ".join(parts) or "-"


def _mb(memory: dict[str, Any]) -> str:
    rss, pss = memory.get("peak_rss_sum_mb"), memory.get("peak_pss_sum_mb")
    return f"{rss:.0f} ({pss:.0f})" if rss is not None and pss is not None else "-"


def _rates(others: list[list[dict[str, Any]]], cfg: dict[str, Any], lat: Any, level: str) -> str:
    """The rollouts/s of the same row in other runs, as `` [a, b]`` (empty without any)."""
    found = []
    for configs in others:
        for c in configs:
            if (c["nodes"], c["replicas"]) != (cfg["nodes"], cfg["replicas"]):
                continue
            for other in c["latencies"]:
                if other["latency_s"] == lat and level in other["levels"]:
                    found.append(str(other["levels"][level]["rollouts_per_s_excl_startup"]))
    return f" [{', '.join(found)}]" if found else ""


def report(configs: list[dict[str, Any]], earlier: list[list[dict[str, Any]]] | None = None) -> str:
    """The Markdown tables of every configuration, latency and level; with ``earlier`` (other
    runs' configs), each row's rollouts/s in those runs in brackets."""
    lines = [
        "| nodes | replicas | fake latency | in flight | rows | rollouts/s | p50 / p99 s "
        "| failed | peak RSS (PSS) MB: Gym with Ray workers / Ray system | CPU ms/rollout: "
        + " / ".join(KINDS)
        + " | Gym CPU ms/rollout (without Ray system) | replica server CPU split % "
        "| cores used by others |",
        "| " + " | ".join(["---"] * 13) + " |",
    ]
    roles = [
        "| nodes | replicas | fake latency | in flight | agent: "
        + " / ".join(ROLES)
        + " | resources: "
        + " / ".join(ROLES)
        + " | model: "
        + " / ".join(ROLES)
        + " |",
        "| " + " | ".join(["---"] * 7) + " |",
    ]
    for cfg in configs:
        for lat in cfg["latencies"]:
            for level, run in lat["levels"].items():
                cpu = " / ".join(str(run["cpu_ms_per_rollout"].get(k, "-")) for k in KINDS)
                failed = run["rows"] - run["statuses"].get("completed", 0)
                kinds = f" {run['failure_kinds']}" if run["failure_kinds"] else ""
                others = run["other_processes_cpu_s"] / run["wall_s"] if run["wall_s"] else None
                head = f"| {cfg['nodes']} | {cfg['replicas']} | {lat['latency_s']} s | {level} "
                lines.append(
                    f"{head}| {run['rows']} | **{run['rollouts_per_s_excl_startup']}**"
                    f"{_rates(earlier or [], cfg, lat['latency_s'], level)} "
                    f"| {run['elapsed_p50_s']} / {run['elapsed_p99_s']} | {failed}{kinds} "
                    f"| {_mb(run['memory'])} / {_mb(run['ray_memory'])} | {cpu} "
                    f"| {run['gym_cpu_ms_per_rollout']} | {_shares(run)} "
                    f"| {round(others, 2) if others is not None else '-'} |"
                )
                by_role = run["cpu_ms_per_rollout_by_role"]
                cells = [
                    " / ".join(str(by_role.get(f"{kind}/{role}", "-")) for role in ROLES)
                    for kind in ("agent", "resources", "model")
                ]
                roles.append(f"{head}| " + " | ".join(cells) + " |")
    return "\n".join(
        [*lines, "", "CPU ms per rollout of the placed kinds, by process role:", "", *roles]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1,2", help="cluster sizes to run (1 and/or 2)")
    ap.add_argument("--replicas", default="1,2", help="replicas of the agent and resources")
    ap.add_argument("--levels", default="64,1024")
    ap.add_argument("--latencies", default="0,2", help="fake model latencies in seconds")
    ap.add_argument("--waves", type=int, default=2, help="rows = waves x level (at least)")
    ap.add_argument("--min-rows", type=int, default=2000, help="fewest rows at 0 s latency")
    ap.add_argument("--deadline-s", type=float, default=900.0, help="per collection")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "ray_scale"))
    ap.add_argument(
        "--report",
        nargs="+",
        metavar="RESULTS_JSON",
        help="run nothing: print the first results file, with the rollouts/s of the others",
    )
    args = ap.parse_args()
    if args.report:
        runs = [json.loads(Path(f).read_text())["configs"] for f in args.report]
        print(report(runs[0], runs[1:]))
        return 0
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "loadavg_before": os.getloadavg(),
        "args": dict(vars(args)),
        "configs": [],
    }
    path = out / "ray_scale_results.json"
    for nodes in (int(x) for x in args.nodes.split(",") if x.strip()):
        for replicas in (int(x) for x in args.replicas.split(",") if x.strip()):
            log(f"{nodes} node(s), {replicas} replica(s) of the agent and of the resources server")
            results["configs"].append(one_config(args, out, nodes, replicas, latencies))
            path.write_text(json.dumps(results, indent=1))  # partial results survive a crash
    results["loadavg_after"] = os.getloadavg()
    path.write_text(json.dumps(results, indent=1))
    print(report(results["configs"]))
    failed = any(
        run["rows"] - run["statuses"].get("completed", 0)
        for cfg in results["configs"]
        for lat in cfg["latencies"]
        for run in lat["levels"].values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; the processes this run started were stopped")
        sys.exit(130)
