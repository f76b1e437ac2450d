"""The scale benchmark (``bench/scale_bench.py``): one fake endpoint latency at a time, every
in-flight level against one ng_run, with CPU milliseconds per rollout of each process kind.

For each latency it starts the fake endpoint with ``--latency-s``, starts ng_run against it,
then runs ``ng_collect_rollouts`` at each level over ``max(waves * level, min_rows)`` rows
(``collection.run_collect`` measures wall time, latency, statuses and failure kinds; the
sampler keeps the peak summed RSS of every Gym process), and groups each process's CPU delta
by kind: collector, agent, resources, model, head (the head server and ng_run's supervisor).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .collection import run_collect, write_input
from .common import free_port, log
from .processes import NgRun, start_fake, stop_process
from .sampling import Sampler

KIND_OF_SERVER_TYPE = {
    "responses_api_agents": "agent",
    "resources_servers": "resources",
    "responses_api_models": "model",
}
KINDS = ("collector", "agent", "resources", "model", "head")


def kinds_of(ngrun: NgRun) -> dict[str, str]:
    """Label (as ``run_collect`` reports CPU) -> process kind."""
    out = {"ng_run (supervisor)": "head", "ng_collect_rollouts": "collector"}
    for row in ngrun.instances:
        kind = KIND_OF_SERVER_TYPE.get(str(row.get("server_type")), "other")
        out[f"ng:{row['name']}"] = "head" if row["name"] == "head_server" else kind
    return out


def cpu_ms_per_rollout(run: dict[str, Any], kinds: dict[str, str]) -> dict[str, float]:
    """CPU milliseconds per rollout of each process kind over one collection."""
    per_kind: dict[str, float] = {}
    for label, seconds in run["cpu_s"].items():
        if seconds is None or "after" in label:
            continue
        kind = kinds.get(label, "other")
        per_kind[kind] = per_kind.get(kind, 0.0) + seconds
    return {k: round(v * 1000.0 / run["rows"], 3) for k, v in sorted(per_kind.items())}


def rows_for(level: int, latency_s: float, args: argparse.Namespace) -> int:
    """Enough rows for ``waves`` full waves at ``level``; with a zero-latency fake at least
    ``min_rows`` (a wave of 64 zero-latency rollouts lasts a few milliseconds)."""
    floor = args.min_rows if latency_s == 0 else 0
    return max(args.waves * level, floor)


def one_latency(args: argparse.Namespace, out: Path, latency_s: float) -> dict[str, Any]:
    """Every level against one ng_run and one fake endpoint answering after ``latency_s``."""
    sampler = Sampler(0.1)
    fake: subprocess.Popen[str] | None = None
    ngrun: NgRun | None = None
    result: dict[str, Any] = {"latency_s": latency_s, "levels": {}}
    sampler.start()
    try:
        fake, fake_port = start_fake(out, ("--latency-s", str(latency_s)))
        sampler.exclude.add(fake.pid)
        head_port = free_port()
        while head_port == fake_port:
            head_port = free_port()
        ngrun = NgRun(out, fake_port, head_port)
        sampler.set_phase("startup")
        result["startup"] = ngrun.start(sampler)
        kinds = kinds_of(ngrun)
        for level in args.levels:
            rows = rows_for(level, latency_s, args)
            input_path = out / f"input_{rows}.jsonl"
            if not input_path.exists():
                write_input(input_path, rows)
            phase = f"l{latency_s}_p{level}"
            sampler.set_phase(phase)
            log(f"latency {latency_s}s: {rows} rows at {level} in flight")
            run = run_collect(
                ngrun=ngrun,
                sampler=sampler,
                fake=fake,
                fake_port=fake_port,
                input_path=input_path,
                output_path=out / f"scale_l{latency_s}_p{level}.jsonl",
                rows=rows,
                parallel=level,
                out=out,
                deadline_s=args.deadline_s,
            )
            time.sleep(0.2)  # the last samples of this level
            run["memory"] = sampler.phase_stats(phase)
            run["cpu_ms_per_rollout"] = cpu_ms_per_rollout(run, kinds)
            result["levels"][str(level)] = run
            log(
                f"latency {latency_s}s p={level}: {run['rollouts_per_s_excl_startup']} "
                f"rollouts/s, p50/p99 {run['elapsed_p50_s']}/{run['elapsed_p99_s']} s, "
                f"statuses {run['statuses']} {run['failure_kinds'] or ''}, peak RSS "
                f"{run['memory'].get('peak_rss_sum_mb')} MB, cpu ms/rollout "
                f"{run['cpu_ms_per_rollout']}"
            )
            for kind, message in run["failure_examples"].items():
                log(f"  e.g. {kind}: {message}")
        sampler.set_phase("idle")
    finally:
        if ngrun is not None:
            sampler.set_phase("shutdown")
            result["shutdown"] = ngrun.stop()
        if fake is not None:
            stop_process(fake, signal.SIGTERM, 5.0)
        sampler.stop()
    result["peak_rss_sum_mb_overall"] = max(
        (v["peak_rss_sum_mb"] for v in sampler.phases.values()), default=None
    )
    return result
