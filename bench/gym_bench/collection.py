"""One measured ng_collect_rollouts run at one parallelism level: its input file, its command,
and what it measured (wall time, rollouts/s, latency, statuses, upstream requests, CPU split)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from .common import AGENT, EXAMPLE_JSONL, ROOT, child_env, http_get_json, log, percentile, rel, tool
from .processes import LineReader, NgRun
from .sampling import Sampler, cpu_s, system_busy_s


def write_input(path: Path, rows: int) -> None:
    src = [line for line in EXAMPLE_JSONL.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(path, "w", encoding="utf-8") as fh:
        for line in itertools.islice(itertools.cycle(src), rows):
            fh.write(line + "\n")


def fake_requests(fake_port: int) -> int:
    return int(http_get_json(f"http://127.0.0.1:{fake_port}/fake/stats")["requests"])


def collect_command(
    input_path: Path, output_path: Path, parallel: int, head_port: int
) -> list[str]:
    return [
        tool("ng_collect_rollouts"),
        f"+agent_name={AGENT}",
        f"+input_jsonl_fpath={rel(input_path)}",
        f"+output_jsonl_fpath={rel(output_path)}",
        f"+num_samples_in_parallel={parallel}",
        f"+head_server.port={head_port}",
    ]


def run_collect(
    *,
    ngrun: NgRun,
    sampler: Sampler,
    fake: subprocess.Popen[str],
    fake_port: int,
    input_path: Path,
    output_path: Path,
    rows: int,
    parallel: int,
    out: Path,
    on_found: Any = None,
    deadline_s: float = 900.0,
) -> dict[str, Any]:
    for p in (output_path, Path(str(output_path) + ".manifest.json")):
        p.unlink(missing_ok=True)
    cmd = collect_command(input_path, output_path, parallel, ngrun.head_port)
    # PYTHONUNBUFFERED: its stdout is a pipe here, and we time from its "Found N rows!" line.
    env = child_env({"NEMO_GYM_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"})

    servers = ngrun.gym_processes()
    fake_ps = psutil.Process(fake.pid)
    me = psutil.Process()
    cpu0 = {label: cpu_s(p) for label, p in servers.items()}
    fake_cpu0 = cpu_s(fake_ps)
    me_cpu0 = cpu_s(me)
    sys0 = system_busy_s()
    req0 = fake_requests(fake_port)

    found: dict[str, Any] = {}
    done = threading.Event()
    result: dict[str, Any] = {}

    err = open(out / f"collect_p{parallel}.stderr.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        start_new_session=True,
    )
    err.close()
    sampler.set_root("ng_collect_rollouts", proc.pid)
    ps_collect = psutil.Process(proc.pid)

    def on_line(line: str) -> None:
        if "t" not in found and re.match(r"Found \d+ rows!", line):
            found["t"] = time.perf_counter()
            found["cpu"] = cpu_s(ps_collect)
            found["sys"] = system_busy_s()
            if on_found is not None:
                on_found(proc.pid)

    def waiter() -> None:
        _, status, rusage = os.wait4(proc.pid, 0)
        result["t_end"] = time.perf_counter()
        result["status"] = status
        result["rusage"] = rusage
        done.set()

    reader = LineReader(proc.stdout, out / f"collect_p{parallel}.stdout.log", on_line)
    reader.start()
    threading.Thread(target=waiter, daemon=True).start()
    try:
        if not done.wait(deadline_s):
            log(f"ng_collect_rollouts p={parallel} still running after {deadline_s}s; killing it")
            raise TimeoutError
    except BaseException:  # the deadline, or Ctrl+C on the harness: never leave it running
        if not done.is_set():
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: it and its children
            except ProcessLookupError:
                pass
            done.wait(10)
        if not isinstance(sys.exc_info()[1], TimeoutError):
            raise
    sampler.set_root("ng_collect_rollouts", None)
    proc.returncode = os.waitstatus_to_exitcode(result["status"]) if "status" in result else -9
    reader.join(timeout=5)

    cpu1 = {label: cpu_s(p) for label, p in servers.items()}
    fake_cpu1 = cpu_s(fake_ps)
    me_cpu1 = cpu_s(me)
    sys1 = system_busy_s()
    req1 = fake_requests(fake_port)

    wall = result.get("t_end", time.perf_counter()) - t0
    t_found = found.get("t")
    ru = result.get("rusage")
    collect_cpu = (ru.ru_utime + ru.ru_stime) if ru is not None else None

    # rows back
    statuses: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    failure_example: dict[str, str] = {}
    elapsed: list[float] = []
    n_out = 0
    if output_path.exists():
        with open(output_path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                n_out += 1
                statuses[str(row.get("_ng_status"))] += 1
                failure = row.get("_ng_failure")
                if row.get("_ng_status") == "failed" and isinstance(failure, dict):
                    kind = str(failure.get("kind"))
                    failures[kind] += 1
                    failure_example.setdefault(kind, str(failure.get("message"))[:300])
                if isinstance(row.get("_ng_elapsed_s"), (int, float)):
                    elapsed.append(float(row["_ng_elapsed_s"]))

    cpu: dict[str, float | None] = {}
    for label in servers:
        a, b = cpu0.get(label), cpu1.get(label)
        cpu[label] = round(b - a, 3) if a is not None and b is not None else None
    cpu["ng_collect_rollouts"] = round(collect_cpu, 3) if collect_cpu is not None else None
    if collect_cpu is not None and found.get("cpu") is not None:
        cpu["ng_collect_rollouts (after 'Found N rows!')"] = round(collect_cpu - found["cpu"], 3)
    gym_cpu = sum(v for k, v in cpu.items() if v is not None and "after" not in k)
    fake_cpu = (fake_cpu1 - fake_cpu0) if fake_cpu0 is not None and fake_cpu1 is not None else None
    me_cpu = (me_cpu1 - me_cpu0) if me_cpu0 is not None and me_cpu1 is not None else None
    sys_busy = sys1 - sys0
    other = sys_busy - gym_cpu - (fake_cpu or 0) - (me_cpu or 0)
    per_k = {k: (round(v * 1000.0 / rows, 3) if v is not None else None) for k, v in cpu.items()}

    ok = n_out == rows and set(statuses) == {"completed"} and proc.returncode == 0
    return {
        "parallel": parallel,
        "rows": rows,
        "exit_code": proc.returncode,
        "wall_s": round(wall, 3),
        "rollouts_per_s": round(rows / wall, 1),
        "startup_to_found_s": round(t_found - t0, 3) if t_found else None,
        "found_to_exit_s": round(result["t_end"] - t_found, 3)
        if t_found and "t_end" in result
        else None,
        "rollouts_per_s_excl_startup": round(rows / (result["t_end"] - t_found), 1)
        if t_found and "t_end" in result
        else None,
        "rows_out": n_out,
        "statuses": dict(statuses),
        "failure_kinds": dict(failures),
        "failure_examples": failure_example,
        "all_completed": ok,
        "elapsed_p50_s": round(percentile(elapsed, 50), 4) if elapsed else None,
        "elapsed_p99_s": round(percentile(elapsed, 99), 4) if elapsed else None,
        "elapsed_mean_s": round(statistics.fmean(elapsed), 4) if elapsed else None,
        "upstream_requests": req1 - req0,
        "upstream_requests_per_rollout": round((req1 - req0) / rows, 3),
        "cpu_s": cpu,
        "cpu_s_per_1000_rollouts": per_k,
        "gym_cpu_s": round(gym_cpu, 3),
        "gym_cpu_s_per_1000_rollouts": round(gym_cpu * 1000.0 / rows, 3),
        "fake_openai_cpu_s": round(fake_cpu, 3) if fake_cpu is not None else None,
        "bench_harness_cpu_s": round(me_cpu, 3) if me_cpu is not None else None,
        "system_busy_cpu_s": round(sys_busy, 3),
        "other_processes_cpu_s": round(other, 3),
        "cpu_utilisation_of_machine": round(sys_busy / (wall * (os.cpu_count() or 1)), 3),
        "cpu_utilisation_of_machine_excl_startup": round(
            (sys1 - found["sys"]) / ((result["t_end"] - t_found) * (os.cpu_count() or 1)), 3
        )
        if t_found and "t_end" in result and "sys" in found
        else None,
        "command": " ".join(cmd),
    }
