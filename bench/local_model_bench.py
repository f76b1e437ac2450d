#!/usr/bin/env python
"""Benchmark of the embedded local model (llama.cpp running SmolLM2-135M-Instruct), in one run.

Not a test: it measures. Run from anywhere with the project's venv:

    .venv/bin/python bench/local_model_bench.py [--requests 8] [--levels 1,2,4] [--no-wait]

1. **Server overhead**: ng_run serving the local model with 1 instance x 2 threads, against
   ``llama_cpp.Llama(n_threads=2)`` in this process, on the same messages (max_tokens 128,
   temperature 0), one request at a time, interleaved direct/server after one warm-up each;
   tokens/s = ``usage.completion_tokens`` / request seconds on both sides, medians, and
   overhead % = (direct - server) / direct (bar: < 10 %). The direct Llama is closed after.
2. **Instances x threads**: a second ng_run with 2 instances x 1 thread next to the first; at
   each concurrency level, ``--requests`` requests (max_tokens 128, temperature 0.7, distinct
   seeds) to each setting, the order of the settings alternating per level; aggregate
   tokens/s and p50 request latency.
3. **Rollouts/s** of the quickstart environment on the local model with its defaults
   (``+policy_base_url=null``): one ng_collect_rollouts over the example's 8 rows per level,
   timed from its "Found N rows!" line to its exit; ``_ng_status`` counts, mean
   ``_ng_num_steps``.

Before measuring it waits (every 15 s, up to 20 min) for a 1-minute load average below 0.6
and no cc1plus/cmake/ninja/pytest process, and it notes any such process during the run.
Results: a Markdown report on stdout and ``<out>/local_model_results.json``; logs in
``<out>/local_model/``. Every process it starts listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from gym_bench.common import ROOT, free_port, log, machine_info, rel  # noqa: E402
from gym_bench.local_model import (  # noqa: E402
    DirectLlama,
    LocalNgRun,
    concurrency_level,
    model_server,
    overhead,
    post_chat,
)
from gym_bench.local_report import compare_settings, markdown  # noqa: E402
from gym_bench.local_rollouts import collect_level, environment_server, warm_up  # noqa: E402
from gym_bench.quiet import Watcher, wait_until_quiet  # noqa: E402

SETTINGS = {"1x2": (1, 2), "2x1": (2, 1)}  # name -> (n_instances, n_threads)


def code_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.rstrip("\n")

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]
    outside = [p for p in dirty if not p.startswith("bench/")]
    return f"commit {git('rev-parse', '--short', 'HEAD')}, uncommitted outside bench/: " + (
        ", ".join(outside) if outside else "none"
    )


def ports(n: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < n:
        port = free_port()
        if port not in chosen:
            chosen.append(port)
    return chosen


def start(ngrun: LocalNgRun, what: str) -> dict[str, Any]:
    log(f"starting ng_run for {what} (head port {ngrun.head_port})")
    startup = ngrun.start_healthy()
    log(f"{what}: all {len(ngrun.instances)} servers healthy in {startup['healthy_wall_s']} s")
    return {**startup, "command": " ".join(ngrun.command())}


def measure(args: argparse.Namespace, out: Path, results: dict[str, Any]) -> None:
    logs = out / "local_model"
    head = ports(4)
    servers = {
        name: model_server(logs / f"server_{name}", head[i], *setting)
        for i, (name, setting) in enumerate(SETTINGS.items())
    }
    env = environment_server(logs / "environment", head[3])
    started: list[LocalNgRun] = []
    try:
        # 1. overhead: the 1x2 server against llama-cpp-python called directly
        first = servers["1x2"]
        started.append(first)
        results["servers"] = {"1x2": start(first, "the model server, 1 instance x 2 threads")}
        direct = DirectLlama(n_threads=2)
        try:
            log(f"overhead: {args.requests} direct and {args.requests} server requests, ABAB")
            results["overhead"] = overhead(
                first.url_of("policy_model"), direct, args.requests, args.max_tokens
            )
        finally:
            direct.close()
        log(f"overhead: {results['overhead']['overhead_pct']} %; direct Llama closed")

        # 2. instances x threads, both servers up, the order alternating per level
        second = servers["2x1"]
        started.append(second)
        results["servers"]["2x1"] = start(second, "the model server, 2 instances x 1 thread")
        warm = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16}
        post_chat(second.url_of("policy_model"), warm)
        conc: dict[str, Any] = {name: {"levels": {}} for name in SETTINGS}
        for i, level in enumerate(args.levels):
            order = list(SETTINGS) if i % 2 == 0 else list(reversed(SETTINGS))
            for name in order:
                run = concurrency_level(
                    servers[name].url_of("policy_model"),
                    level,
                    args.requests,
                    args.max_tokens,
                    seed0=1000 * level,
                )
                conc[name]["levels"][str(level)] = run
                log(
                    f"{name} at {level} in parallel: {run['aggregate_tokens_per_s']} tokens/s, "
                    f"p50 {run['latency_p50_s']} s"
                )
        results["concurrency"] = conc
        results["settings_comparison"] = compare_settings(conc)
        for name in SETTINGS:
            results["servers"][name]["stop"] = servers[name].stop()
        started.clear()

        # 3. rollouts/s of the quickstart environment on the local model (defaults)
        started.append(env)
        results["rollouts"] = {"startup": start(env, "the quickstart environment"), "levels": {}}
        warm_up(env)
        for level in args.levels:
            run = collect_level(env, out, logs, level)
            results["rollouts"]["levels"][str(level)] = run
            log(f"rollouts at {level} in parallel: {run['rollouts_per_s']}/s {run['statuses']}")
        results["rollouts"]["stop"] = env.stop()
        started.clear()
    finally:
        for ngrun in started:
            log(f"stopping ng_run (pid {ngrun.proc.pid if ngrun.proc else None})")
            ngrun.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=8, help="requests per side / per level")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--levels", default="1,2,4", help="comma-separated concurrency levels")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--max-load", type=float, default=0.6, help="quiet: 1-minute load below")
    ap.add_argument("--wait-timeout", type=float, default=1200.0, help="quiet: longest wait, s")
    ap.add_argument("--no-wait", action="store_true", help="measure without waiting for quiet")
    args = ap.parse_args()
    args.levels = [int(x) for x in str(args.levels).split(",") if x.strip()]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "machine": machine_info(),
        "code": code_state(),
        "command": " ".join(
            [os.path.relpath(sys.executable, Path.cwd()), rel(Path(__file__)), *sys.argv[1:]]
        ),
        "args": vars(args),
    }
    if args.no_wait:
        results["quiet_before"] = {"quiet": None, "waited_s": 0, "load1_at_start": None}
        results["quiet_before"]["busy_processes_at_start"] = "not checked (--no-wait)"
    else:
        results["quiet_before"] = wait_until_quiet(args.max_load, 15.0, args.wait_timeout)
    results["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    watcher = Watcher(5.0)
    watcher.start()
    t0 = time.perf_counter()
    try:
        measure(args, out, results)
    finally:
        results["watcher"] = watcher.stop()
    results["total_s"] = round(time.perf_counter() - t0, 1)
    path = out / "local_model_results.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown(results))
    print(f"\n(results: {rel(path)})")
    bad = [lv for lv in results["rollouts"]["levels"].values() if lv["exit_code"] != 0]
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; the processes this run started were stopped")
        sys.exit(130)
