#!/usr/bin/env python
"""Scale benchmark: rollouts/s, latency, peak memory and CPU per rollout with thousands in flight.

Not a test: it measures. From the repo root, with the project's venv:

    .venv/bin/python bench/scale_bench.py [--levels 64,1024,4096,16384] [--latencies 0,2]
                                          [--waves 2] [--min-rows 2000] [--repeat K]
                                          [--out bench/out/scale]

For each fake-model latency (``nemo_gym.testing.fake_openai --latency-s``) it starts the fake and
ng_run (example_single_tool_call + openai_model pointed at the fake), then runs
``ng_collect_rollouts +num_samples_in_parallel=<level>`` at each level over
``max(waves * level, min_rows)`` rows (``min_rows`` only with a zero-latency fake). Per level:
rollouts/s (rows over the time from the collector's "Found N rows!" line to its exit, i.e.
without the CLI's start-up; the whole command's figure too), p50/p99 of ``_ng_elapsed_s``, rows
per status and failure kind, the peak of the summed RSS of every Gym process (ng_run, its
servers, the collector; sampled every 100 ms with psutil) and the CPU milliseconds per rollout
of each process kind (psutil ``cpu_times`` deltas: collector, agent, resources, model, head).
The Gym CPU per rollout and the cores other processes took in the same window (the machine is
shared) are reported beside them. ``--repeat K`` runs everything K times and reports medians;
``--report a.json b.json`` pools earlier runs without running anything. The harness is
``gym_bench/scale.py``; results go to ``<out>/scale_results.json`` and a Markdown table on
stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from gym_bench.common import ROOT, log, machine_info  # noqa: E402
from gym_bench.scale import KINDS, one_latency  # noqa: E402


def median_of(values: list[Any]) -> Any:
    nums = [v for v in values if isinstance(v, (int, float))]
    return round(statistics.median(nums), 3) if nums else None


def summarise(reps: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """latency -> level -> median figures over the repetitions."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for latency in dict.fromkeys(str(r["latency_s"]) for r in reps):
        runs = [r for r in reps if str(r["latency_s"]) == latency]
        levels: dict[str, dict[str, Any]] = {}
        for level in runs[0]["levels"]:
            per = [r["levels"][level] for r in runs if level in r["levels"]]
            levels[level] = {
                "rows": per[0]["rows"],
                "rollouts_per_s": median_of([p["rollouts_per_s_excl_startup"] for p in per]),
                "rollouts_per_s_each": [p["rollouts_per_s_excl_startup"] for p in per],
                "rollouts_per_s_whole": median_of([p["rollouts_per_s"] for p in per]),
                "p50_s": median_of([p["elapsed_p50_s"] for p in per]),
                "p99_s": median_of([p["elapsed_p99_s"] for p in per]),
                "failed": [p["rows"] - p["statuses"].get("completed", 0) for p in per],
                "failure_kinds": [p["failure_kinds"] for p in per],
                "peak_rss_mb": median_of([p["memory"].get("peak_rss_sum_mb") for p in per]),
                "peak_rss_mb_max": max(p["memory"].get("peak_rss_sum_mb") or 0 for p in per),
                "cpu_ms_per_rollout": {
                    k: median_of([p["cpu_ms_per_rollout"].get(k) for p in per]) for k in KINDS
                },
                "gym_cpu_ms_per_rollout": median_of(
                    [p["gym_cpu_s_per_1000_rollouts"] for p in per]
                ),
                # the share of the machine's cores that other processes (other users) took
                "others_cores": median_of(
                    [p["other_processes_cpu_s"] / p["wall_s"] for p in per if p["wall_s"]]
                ),
            }
        out[latency] = levels
    return out


def report(medians: dict[str, dict[str, dict[str, Any]]], repeat: int) -> str:
    lines = [f"Medians of {repeat} run(s) per figure; rollouts/s excludes the CLI start-up.", ""]
    head = (
        "| fake latency | in flight | rows | rollouts/s | vs best lower | p50 / p99 s | failed "
        "| peak RSS MB | CPU ms/rollout: " + " / ".join(KINDS) + " | Gym CPU ms/rollout "
        "| cores used by others |"
    )
    lines += [head, "| " + " | ".join(["---"] * 11) + " |"]
    for latency, levels in medians.items():
        best = 0.0
        for level, m in levels.items():
            rate = m["rollouts_per_s"] or 0.0
            ratio = f"{rate / best:.2f}" if best else "-"
            if int(level) < 4096:
                best = max(best, rate)
            cpu = " / ".join(str(m["cpu_ms_per_rollout"].get(k)) for k in KINDS)
            lines.append(
                f"| {latency} s | {level} | {m['rows']} | **{m['rollouts_per_s']}** "
                f"{m['rollouts_per_s_each']} | {ratio} | {m['p50_s']} / {m['p99_s']} | "
                f"{m['failed']} {m['failure_kinds'] if any(m['failure_kinds']) else ''} | "
                f"{m['peak_rss_mb']} (max {m['peak_rss_mb_max']}) | {cpu} | "
                f"{m['gym_cpu_ms_per_rollout']} | {m['others_cores']} |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="64,1024,4096,16384")
    ap.add_argument("--latencies", default="0,2", help="fake model latencies in seconds")
    ap.add_argument("--waves", type=int, default=2, help="rows = waves x level (at least)")
    ap.add_argument("--min-rows", type=int, default=2000, help="fewest rows at 0 s latency")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--deadline-s", type=float, default=900.0, help="per collection")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "scale"))
    ap.add_argument(
        "--report",
        nargs="+",
        metavar="RESULTS_JSON",
        help="run nothing: pool the runs of earlier scale_results.json files and print them",
    )
    args = ap.parse_args()
    if args.report:
        pooled = [r for f in args.report for r in json.loads(Path(f).read_text())["runs"]]
        print(report(summarise(pooled), len({r["repetition"] for r in pooled}) or 1))
        return 0
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    reps: list[dict[str, Any]] = []
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "loadavg_before": os.getloadavg(),
        "args": dict(vars(args)),
    }
    for rep in range(1, args.repeat + 1):
        for latency in latencies:
            log(f"repetition {rep}: fake latency {latency} s")
            reps.append({"repetition": rep, **one_latency(args, out, latency)})
    results["runs"] = reps
    results["medians"] = summarise(reps)
    results["loadavg_after"] = os.getloadavg()
    (out / "scale_results.json").write_text(json.dumps(results, indent=1))
    print(report(results["medians"], args.repeat))
    failed = any(sum(m["failed"]) for lv in results["medians"].values() for m in lv.values())
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; the processes this run started were stopped")
        sys.exit(130)
