"""Rollouts/s of the quickstart environment (example_single_tool_call) on the embedded local
model: ng_run with ``+policy_base_url=null`` and one timed ng_collect_rollouts per level."""

from __future__ import annotations

import json
import re
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .collection import collect_command
from .common import CONFIG_PATHS, EXAMPLE_JSONL, ROOT, child_env, log
from .local_model import LocalNgRun, post_chat
from .processes import LineReader, stop_process
from .quiet import CpuWindow


def environment_server(out: Path, head_port: int) -> LocalNgRun:
    """ng_run of the quickstart environment; policy_model becomes the local model (defaults)."""
    return LocalNgRun(out, head_port, [f"+config_paths=[{CONFIG_PATHS}]", "+policy_base_url=null"])


def warm_up(ngrun: LocalNgRun) -> None:
    """One short request to the model, so the first level does not pay any first-call cost."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    post_chat(ngrun.url_of("policy_model"), body)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def collect_level(
    ngrun: LocalNgRun, out: Path, logs: Path, parallel: int, deadline_s: float = 900.0
) -> dict[str, Any]:
    """One ng_collect_rollouts over the example's rows at ``parallel``, timed from its
    "Found N rows!" line to its exit."""
    output = out / f"local_p{parallel}.jsonl"
    for p in (output, Path(str(output) + ".manifest.json")):
        p.unlink(missing_ok=True)
    cmd = collect_command(EXAMPLE_JSONL, output, parallel, ngrun.head_port)
    found: dict[str, Any] = {}
    found_event = threading.Event()

    def on_line(line: str) -> None:
        m = re.match(r"Found (\d+) rows!", line)
        if m and not found_event.is_set():
            found.update(t=time.perf_counter(), rows=int(m.group(1)))
            found_event.set()

    window = CpuWindow()
    with open(logs / f"collect_p{parallel}.stderr.log", "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=child_env({"NEMO_GYM_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    reader = LineReader(proc.stdout, logs / f"collect_p{parallel}.stdout.log", on_line)
    reader.start()
    try:
        code = proc.wait(timeout=deadline_s)
    except BaseException:  # the deadline, or Ctrl+C: never leave it running
        log(f"stopping ng_collect_rollouts p={parallel} (pid {proc.pid})")
        code = stop_process(proc, signal.SIGTERM, 10.0)
        raise
    t_end = time.perf_counter()
    reader.join(timeout=5)
    noise = window.close()

    rows = read_rows(output)
    statuses = Counter(str(r.get("_ng_status")) for r in rows)
    steps = [r["_ng_num_steps"] for r in rows if isinstance(r.get("_ng_num_steps"), int)]
    rewards = [float(r["reward"]) for r in rows if isinstance(r.get("reward"), (int, float))]
    elapsed = [float(r["_ng_elapsed_s"]) for r in rows if "_ng_elapsed_s" in r]
    t_found = found.get("t")
    collect_s = (t_end - t_found) if t_found else None
    return {
        "parallel": parallel,
        "exit_code": code,
        "rows_in": found.get("rows"),
        "rows_out": len(rows),
        "wall_s": round(t_end - t0, 3),
        "found_to_exit_s": round(collect_s, 3) if collect_s else None,
        "rollouts_per_s": round(len(rows) / collect_s, 3) if collect_s else None,
        "statuses": dict(statuses),
        "mean_num_steps": round(statistics.fmean(steps), 2) if steps else None,
        "model_calls": sum(steps),
        "model_calls_per_s": round(sum(steps) / collect_s, 3) if collect_s else None,
        "mean_reward": round(statistics.fmean(rewards), 3) if rewards else None,
        "rollout_elapsed_p50_s": round(statistics.median(elapsed), 3) if elapsed else None,
        "rollout_elapsed_max_s": round(max(elapsed), 3) if elapsed else None,
        "cpu": noise,
        "command": " ".join(cmd),
    }
