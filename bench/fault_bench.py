"""Fault benchmark: what a run of N rollouts loses, and costs, when things go wrong.

Not a test: it prints a Markdown table for bench/RESULTS.md. Each scenario starts the fake
OpenAI endpoint and ``ng_run`` (weather environment, openai_model) on free loopback ports and
collects N rollouts (``+num_samples_in_parallel=64``); it reports rollouts completed and failed
after the first pass, after ``+resume=true`` (which retries failed rows), upstream requests per
rollout (the fake's own count) and how many of them it answered 429, and wall time. Scenarios:
no faults; 10%, 25% and 50% of model calls answered 429 at random; a 429 storm (every model
call answered 429 for ``--storm-s`` seconds, 30 by default, from the request half-way through
a fault-free run's requests on); ``kill -9`` of the agent, the resources server and the model
server while rollouts run (ng_run restarts them).

    .venv/bin/python bench/fault_bench.py [--rows 1000] [--only "25% 429,429 storm"]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIGS = (
    "resources_servers/example_single_tool_call/configs/example_single_tool_call.yaml,"
    "responses_api_models/openai_model/configs/openai_model.yaml"
)
AGENT = "example_single_tool_call_simple_agent"
SCENARIOS: dict[str, dict[str, Any]] = {
    "no faults": {},
    "10% 429": {"fail_rate": 0.10},
    "25% 429": {"fail_rate": 0.25},
    "50% 429": {"fail_rate": 0.50},
    "429 storm": {"storm": True},
    "kill-agent": {"kill": AGENT},
    "kill-resources": {"kill": "example_single_tool_call"},
    "kill-model": {"kill": "policy_model"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def scenario(
    name: str, spec: dict[str, Any], rows: int, work: Path, storm_s: float
) -> dict[str, Any]:
    fake_port, head_port = free_port(), free_port()
    # two model calls per rollout: the storm starts half-way through a fault-free run
    storm = ["--storm-after", str(rows), "--storm-s", str(storm_s)] if spec.get("storm") else []
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nemo_gym.testing.fake_openai",
            "--port",
            str(fake_port),
            "--fail-rate",
            str(spec.get("fail_rate", 0.0)),
            "--seed",
            "7",
            *storm,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{fake_port}"
    log = (work / f"{name}.ng_run.log").open("w")
    run = subprocess.Popen(
        [
            str(BIN / "ng_run"),
            f"+config_paths=[{CONFIGS}]",
            f"+head_server.port={head_port}",
            f"+policy_base_url={base}/v1",
            "+policy_api_key=sk-bench",
            "+policy_model_name=fake",
            "+graceful_shutdown_s=5",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _healthy(head_port), 120, "ng_run")
        row = json.loads(
            (ROOT / "resources_servers/example_single_tool_call/data/example.jsonl")
            .read_text()
            .splitlines()[0]
        )
        data, out = work / f"{name}.in.jsonl", work / f"{name}.out.jsonl"
        data.write_text(json.dumps(row) + "\n")
        command = [
            str(BIN / "ng_collect_rollouts"),
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={out}",
            f"+num_repeats={rows}",
            "+num_samples_in_parallel=64",
            f"+head_server.port={head_port}",
        ]
        before = get(f"{base}/fake/stats")["requests"]
        started = time.monotonic()
        collect_log = (work / f"{name}.collect.log").open("w")
        collect = subprocess.Popen(command, cwd=ROOT, stdout=collect_log, stderr=subprocess.STDOUT)
        if spec.get("kill"):
            wait_for(
                lambda: out.exists() and len(out.read_bytes().splitlines()) >= rows // 4,
                300,
                "a quarter of the rollouts",
            )
            pid = {
                r["name"]: r["pid"] for r in get(f"http://127.0.0.1:{head_port}/server_instances")
            }
            os.kill(pid[spec["kill"]], signal.SIGKILL)
        collect.wait(1800)
        collect_log.close()
        wall = time.monotonic() - started
        first = _statuses(out)
        resume = subprocess.run(
            [*command, "+resume=true"], cwd=ROOT, capture_output=True, timeout=1800, check=False
        )
        final = _statuses(out)
        stats = get(f"{base}/fake/stats")
        requests = stats["requests"] - before
        return {
            "scenario": name,
            "rows": rows,
            "first_completed": first.get("completed", 0) + first.get("truncated", 0),
            "first_failed": first.get("failed", 0),
            "final_completed": final.get("completed", 0) + final.get("truncated", 0),
            "final_failed": final.get("failed", 0),
            "resume_exit": resume.returncode,
            "requests_per_rollout": round(requests / rows, 3),
            "refused": stats["failed"],
            "wall_s": round(wall, 1),
        }
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(60)
        fake.kill()
        fake.wait(10)
        log.close()


def _healthy(port: int) -> bool:
    try:
        return bool(get(f"http://127.0.0.1:{port}/server_instances"))
    except OSError:
        return False


def _statuses(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        status = json.loads(line)["_ng_status"]
        counts[status] = counts.get(status, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--storm-s", type=float, default=30.0, help="length of the 429 storm")
    parser.add_argument("--logs", default="", help="keep the logs in this folder")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.only or s in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="gym-fault-bench-") as tmp:
        work = Path(args.logs or tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = [
            scenario(name, SCENARIOS[name], args.rows, work, args.storm_s) for name in chosen
        ]
    print(
        "| scenario | rollouts | completed / failed (first pass) | completed / failed "
        "(after resume) | upstream requests per rollout | of which 429 | wall s (first pass) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['scenario']} | {r['rows']} | {r['first_completed']} / {r['first_failed']} | "
            f"{r['final_completed']} / {r['final_failed']} | {r['requests_per_rollout']} | "
            f"{round(r['refused'] / r['rows'], 3)} | {r['wall_s']} |"
        )


if __name__ == "__main__":
    main()
