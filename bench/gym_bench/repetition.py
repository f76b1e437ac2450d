"""One repetition of the benchmark (fake endpoint, ng_run start-up, every parallelism level,
optionally the py-spy run, then shutdown), and the warm-up that fills ``--pycache-prefix``."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import common
from .collection import run_collect, write_input
from .common import ROOT, child_env, free_port, log
from .processes import NgRun, start_fake, stop_process
from .profiling import profile_run
from .sampling import Sampler


def one_repetition(args: argparse.Namespace, out: Path, rep: int, profile: bool) -> dict[str, Any]:
    sampler = Sampler(0.05)
    fake: subprocess.Popen[str] | None = None
    ngrun: NgRun | None = None
    result: dict[str, Any] = {"repetition": rep}
    sampler.start()
    try:
        fake, fake_port = start_fake(out)
        sampler.exclude.add(fake.pid)
        head_port = free_port()
        while head_port == fake_port:
            head_port = free_port()
        ngrun = NgRun(out, fake_port, head_port)
        result["ng_run_command"] = " ".join(ngrun.command())
        sampler.set_phase("startup")
        log(f"rep {rep}: starting ng_run (head port {head_port}, fake port {fake_port})")
        startup = ngrun.start(sampler)
        time.sleep(0.3)  # let the start-up RSS settle into the start-up phase
        startup["memory"] = sampler.phase_stats("startup")
        result["startup"] = startup
        log(
            f"rep {rep}: healthy in {startup['healthy_wall_s']}s "
            f"(ng_run says {startup['ng_run_reported_s']}s)"
        )

        input_path = out / "input.jsonl"
        write_input(input_path, args.rows)
        levels = {}
        for p in args.parallel:
            phase = f"p{p}"
            sampler.set_phase(phase)
            log(f"rep {rep}: collecting {args.rows} rows at parallel {p}")
            run = run_collect(
                ngrun=ngrun,
                sampler=sampler,
                fake=fake,
                fake_port=fake_port,
                input_path=input_path,
                output_path=out / f"rollouts_p{p}.jsonl",
                rows=args.rows,
                parallel=p,
                out=out,
            )
            time.sleep(0.1)
            run["memory"] = sampler.phase_stats(phase)
            levels[str(p)] = run
            log(
                f"rep {rep}: p={p}: {run['rollouts_per_s']} rollouts/s "
                f"({run['rollouts_per_s_excl_startup']} excl. start-up), "
                f"statuses {run['statuses']}, peak RSS {run['memory'].get('peak_rss_sum_mb')} MB"
            )
            if not run["all_completed"]:
                log(
                    f"rep {rep}: p={p}: NOT all rows completed: {run['statuses']} "
                    f"(exit {run['exit_code']}, {run['rows_out']} rows)"
                )
        result["levels"] = levels
        if profile:
            log(f"rep {rep}: profiling run at parallel {args.profile_parallel} with py-spy")
            result["profile"] = profile_run(
                ngrun=ngrun,
                sampler=sampler,
                fake=fake,
                fake_port=fake_port,
                out=out,
                rows=args.profile_rows,
                parallel=args.profile_parallel,
                duration=args.profile_duration,
                rate=args.profile_rate,
                native=args.profile_native,
            )
        sampler.set_phase("idle")
    finally:
        if ngrun is not None:
            sampler.set_phase("shutdown")
            result["shutdown"] = ngrun.stop()
            log(f"rep {rep}: ng_run stopped: {result['shutdown']}")
        if fake is not None:
            stop_process(fake, signal.SIGTERM, 5.0)
        sampler.stop()
    all_phases = {k: v for k, v in sampler.phases.items() if k != "profile"}
    result["peak_rss_sum_mb_overall"] = max(
        (v["peak_rss_sum_mb"] for v in all_phases.values()), default=None
    )
    result["peak_pss_sum_mb_overall"] = max(
        (v["peak_pss_sum_mb"] for v in all_phases.values()), default=None
    )
    return result


def warm_pycache() -> None:
    """Fill the --pycache-prefix cache: import what ng_run's servers and the CLIs import."""
    log(f"warming the bytecode cache in {common.PYCACHE_PREFIX}")
    code = (
        "import nemo_gym.cli.run, nemo_gym.cli.collect, nemo_gym.testing.fake_openai, "
        "uvicorn, uvloop, httptools, fastapi, nemo_gym.head.app, nemo_gym.agent.server, "
        "nemo_gym.model.server, nemo_gym.resources.server, "
        "uvicorn.protocols.http.httptools_impl, uvicorn.lifespan.on, uvicorn.loops.uvloop"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env({}), check=True)
    # plus one throw-away start of everything, for whatever the line above missed
    args = argparse.Namespace(rows=64, parallel=[64], profile_parallel=64)
    tmp = Path(common.PYCACHE_PREFIX or "/tmp") / "_warmup_out"
    tmp.mkdir(parents=True, exist_ok=True)
    one_repetition(args, tmp, 0, False)
