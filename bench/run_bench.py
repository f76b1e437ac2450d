#!/usr/bin/env python
"""End-to-end throughput / start-up / memory benchmark of Gym against a zero-latency fake model.

Not a test: it measures. Run from anywhere with the project's venv:

    .venv/bin/python bench/run_bench.py [--rows 2000] [--parallel 16,64,256] [--out bench/out]
                                        [--repeat K] [--profile]

One repetition:

1. starts the fake OpenAI endpoint (``python -m nemo_gym.testing.fake_openai --port 0``);
2. starts ``ng_run`` (example_single_tool_call + openai_model pointed at the fake) on a free
   head-server port and times Popen -> every entry of ``GET /server_instances`` "healthy"
   (polled every 20 ms), next to the "All N servers healthy in X.XXs" line ng_run prints;
3. for each parallelism p runs ``ng_collect_rollouts`` over ``--rows`` rows and times it (whole
   command, and from its "Found N rows!" line to its exit), reads the rows back (p50/p99 of
   ``_ng_elapsed_s``, counts per ``_ng_status``), counts upstream requests per rollout, and
   takes each process's CPU time over the run;
4. samples, every 50 ms, the RSS of every Gym process (ng_run and its descendants,
   ng_collect_rollouts and its descendants; never the fake endpoint), and their PSS/USS every
   500 ms, and keeps the peak of the sum per phase and the biggest single process;
5. stops ng_run with SIGINT, then the fake endpoint.

``--repeat K`` runs all of that K times and reports medians. ``--profile`` adds one run at
``--profile-parallel`` (default 64) after the measured ones, with ``py-spy record`` attached to
every Gym process for ``--profile-duration`` seconds; that run is reported apart (py-spy costs
CPU) and is never part of the medians. ``--pycache-prefix DIR`` gives the started processes a
bytecode cache outside the repo (this machine sets PYTHONDONTWRITEBYTECODE and the venv has no
.pyc, so by default every process start compiles its imports). ``--merge a.json b.json`` pools
earlier runs. Results: a Markdown report on stdout and ``<out>/results.json``.

This file is only the command line; the harness itself is the package ``bench/gym_bench/``
(one module per role, listed in its ``__init__``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path
from typing import Any

# The harness lives in bench/gym_bench/; make it importable however this file is started.
BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from gym_bench import common  # noqa: E402
from gym_bench.common import ROOT, bytecode_info, log, machine_info, rel  # noqa: E402
from gym_bench.repetition import one_repetition, warm_pycache  # noqa: E402
from gym_bench.report import finish, merge  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--parallel", default="16,64,256", help="comma-separated parallelism levels")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--repeat", type=int, default=1, help="repetitions; medians are reported")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="after the measured runs, one py-spy-profiled run (needs py-spy)",
    )
    ap.add_argument("--profile-parallel", type=int, default=64)
    ap.add_argument("--profile-rows", type=int, default=6000)
    ap.add_argument("--profile-duration", type=int, default=10)
    ap.add_argument("--profile-rate", type=int, default=100)
    ap.add_argument(
        "--profile-native",
        action="store_true",
        help="py-spy --native (C frames too; pauses the processes while sampling)",
    )
    ap.add_argument(
        "--pycache-prefix",
        metavar="DIR",
        help=(
            "give the started processes a bytecode cache in DIR (PYTHONPYCACHEPREFIX, with "
            "PYTHONDONTWRITEBYTECODE unset); a warm-up start fills it before the measured ones"
        ),
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="RESULTS_JSON",
        help="run nothing: pool the repetitions of earlier results.json files, "
        "print the report of their medians and write it to <out>/results.json",
    )
    args = ap.parse_args()
    if args.merge:
        print(merge(args.merge, Path(args.out)))
        return 0
    args.parallel = [int(x) for x in str(args.parallel).split(",") if x.strip()]
    if args.pycache_prefix:
        common.set_pycache_prefix(str(Path(args.pycache_prefix).resolve()))
        warm_pycache()
    out = Path(args.out)
    if not out.is_absolute():
        out = (Path.cwd() / out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("ng_run.log", "fake_openai.log"):
        (out / name).unlink(missing_ok=True)

    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "command": " ".join(
            [
                os.path.relpath(sys.executable, Path.cwd()),
                *[os.path.relpath(a, Path.cwd()) if a == __file__ else a for a in sys.argv],
            ]
        ),
        "args": {**vars(args)},
        "bytecode": bytecode_info(),
        "loadavg_before": os.getloadavg(),
        "repetitions": [],
    }
    t_all = time.perf_counter()
    for rep in range(1, args.repeat + 1):
        do_profile = args.profile and rep == args.repeat
        rep_result = one_repetition(args, out, rep, do_profile)
        if "profile" in rep_result:
            results["profile"] = rep_result.pop("profile")
        results["repetitions"].append(rep_result)
    results["total_s"] = round(time.perf_counter() - t_all, 1)
    text = finish(results, out)
    print(text)
    print(f"\n(results: {rel(out / 'results.json')}; total {results['total_s']} s)")
    bad = [
        p
        for r in results["repetitions"]
        for p, lv in r.get("levels", {}).items()
        if not lv["all_completed"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; the processes this run started were stopped")
        sys.exit(130)
