#!/usr/bin/env python
"""Benchmark of ``ng_viewer`` on a large file, through the real server.

Not a test: it measures. Run from the repo root with the project's venv:

    .venv/bin/python bench/viewer_bench.py [--rows 100000] [--runs 5]

It writes a realistic rollout file (two tools, function call / tool output / assistant message,
reasoning on a third of the rows, token ids and logprobs on the model's items, 5 repeats per task,
~8% failed rows) into a temp dir, then ``--runs`` times: starts ``.venv/bin/ng_viewer`` on a free
127.0.0.1 port and measures (1) start until the URL is printed (the index is built before), the
index time it reports, (2) the first ``/summary``, (3) the first page of ``/rows``, (4) a filtered
search (``status=completed&q=<word>&sort=reward``) and (5) one row by id; then stops it by PID.
Prints the median and the range of each figure, and the file's size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CITIES = ["Paris", "Tokyo", "Lagos", "Lima", "Oslo", "Hanoi", "Quito", "Perth", "Cairo", "Sofia"]
WORDS = "the of weather city answer rain sun wind cold warm today tomorrow check find".split()
TOOLS = [
    {
        "type": "function",
        "name": name,
        "description": desc,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
    for name, desc in (
        ("get_weather", "Get the current weather for a city."),
        ("get_time", "Get the local time in a city."),
    )
]


def _tokens(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "prompt_token_ids": [rng.randrange(49152) for _ in range(n * 3)],
        "generation_token_ids": [rng.randrange(49152) for _ in range(n)],
        "generation_log_probs": [round(-rng.random() * 3, 4) for _ in range(n)],
    }


def make_row(task: int, repeat: int, rng: random.Random) -> dict[str, Any]:
    """One realistic rollout row in Gym's output layout."""
    city = CITIES[task % len(CITIES)]
    tool = "get_weather" if task % 3 else "get_time"
    question = f"Task {task}: what is it like in {city}? " + " ".join(rng.choices(WORDS, k=12))
    output: list[dict[str, Any]] = []
    if rng.random() < 0.33:
        thought = " ".join(rng.choices(WORDS, k=40))
        output.append(
            {
                "type": "reasoning",
                "id": f"rs_{task}",
                "summary": [{"type": "summary_text", "text": thought}],
            }
        )
    output.append(
        {
            "type": "function_call",
            "call_id": f"call_{task}_{repeat}",
            "name": tool,
            "arguments": json.dumps({"city": city}),
            "id": f"fc_{task}",
            "status": "completed",
            **_tokens(rng, 12),
        }
    )
    output.append(
        {
            "type": "function_call_output",
            "call_id": f"call_{task}_{repeat}",
            "output": json.dumps({"city": city, "report": f"It is mild in {city}."}),
        }
    )
    answer = f"In {city} it is mild. " + " ".join(rng.choices(WORDS, k=30))
    output.append(
        {
            "type": "message",
            "id": f"msg_{task}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": answer, "annotations": []}],
            **_tokens(rng, 40),
        }
    )
    failed = rng.random() < 0.08
    reward = None if failed else float(rng.random() < 0.4 + (task % 5) / 10)
    return {
        "responses_create_params": {
            "input": [
                {"role": "developer", "content": "You are a helpful assistant. Use the tools."},
                {"role": "user", "content": question},
            ],
            "tools": TOOLS,
            "temperature": 1.0,
        },
        "expected_city": city,
        "_ng_task_index": task,
        "_ng_repeat_index": repeat,
        "response": {
            "id": f"resp_{task}_{repeat}",
            "object": "response",
            "model": "bench",
            "status": "completed",
            "output": output,
            "usage": {"input_tokens": 120, "output_tokens": 52, "total_tokens": 172},
        },
        "reward": reward,
        "tool_correct": reward is not None,
        "_ng_schema_version": 1,
        "_ng_status": "failed" if failed else "completed",
        "_ng_failure": {"kind": "model_error", "message": "HTTP 500 from model", "step": 1}
        if failed
        else None,
        "_ng_num_steps": 2,
        "_ng_elapsed_s": round(rng.uniform(0.5, 9.0), 3),
    }


def write_file(path: Path, rows: int, repeats: int = 5) -> None:
    rng = random.Random(0)
    with path.open("w") as f:
        for i in range(rows):
            f.write(json.dumps(make_row(i // repeats, i % repeats, rng)) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = json.loads(resp.read())
    return time.perf_counter() - started, body


def one_run(path: Path) -> dict[str, float]:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/ng_viewer"), f"+jsonl_fpath={path}", f"+port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    figures: dict[str, float] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"rows in ([0-9.]+)s", line)
            if found:
                figures["index_s"] = float(found.group(1))
            if "http://" in line:
                figures["start_to_url_s"] = time.perf_counter() - started
                break
        base = f"http://127.0.0.1:{port}/api/files/0"
        deadline = time.monotonic() + 30
        while True:  # uvicorn accepts on the bound socket a moment after the URL is printed
            try:
                figures["summary_s"], summary = get(f"{base}/summary")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
        figures["first_page_s"], _ = get(f"{base}/rows?limit=50")
        figures["search_s"], page = get(f"{base}/rows?status=completed&q=tokyo%20rain&sort=reward")
        figures["one_row_s"], _ = get(f"{base}/rows/{summary['rows'] // 2}")
        figures["matched"] = page["matched"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollouts.jsonl"
        write_file(path, args.rows)
        size_mb = os.path.getsize(path) / 1e6
        print(f"{args.rows} rows, {size_mb:.0f} MB, {args.runs} runs, {os.cpu_count()} CPUs")
        runs = [one_run(path) for _ in range(args.runs)]
    print(f"matched by the search: {int(runs[0]['matched'])} rows")
    for key in ("start_to_url_s", "index_s", "summary_s", "first_page_s", "search_s", "one_row_s"):
        values = [r[key] for r in runs]
        print(
            f"{key:15s} median {statistics.median(values):7.3f}s "
            f"(min {min(values):.3f}, max {max(values):.3f})"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
