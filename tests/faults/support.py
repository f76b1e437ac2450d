"""What the fault tests share: a collection to break, and the exact check of its output.

Each test runs the real ``ng_run`` (weather environment over the fake OpenAI endpoint) and the
real ``ng_collect_rollouts``; :func:`check_output` compares the output with an independent
count (rows in the input times repeats): every (task, repeat) exactly once, each completed.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import BIN, REPO, Proc, wait_for

AGENT = "example_single_tool_call_simple_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"


def write_input(path: Path, prompt: str = "Oslo?") -> Path:
    """One weather row whose question is ``prompt`` (fake markers such as FAKE_SLEEP_0.2)."""
    row = json.loads(DATA.read_text().splitlines()[0])
    row["responses_create_params"]["input"][-1]["content"] = prompt
    path.write_text(json.dumps(row) + "\n")
    return path


def collect_command(port: int, data: Path, out: Path, repeats: int, parallel: int) -> list[str]:
    return [
        str(BIN / "ng_collect_rollouts"),
        f"+agent_name={AGENT}",
        f"+input_jsonl_fpath={data}",
        f"+output_jsonl_fpath={out}",
        f"+num_repeats={repeats}",
        f"+num_samples_in_parallel={parallel}",
        f"+head_server.port={port}",
    ]


def rows_written(out: Path) -> int:
    return len(out.read_bytes().splitlines()) if out.exists() else 0


def wait_rows(out: Path, n: int, timeout: float = 60) -> None:
    wait_for(lambda: rows_written(out) >= n, timeout, f"{n} rows in {out}")


def read_rows(out: Path) -> list[dict[str, Any]]:
    """Every line of ``out`` as a row; fails on a line that is not whole JSON."""
    raw = out.read_bytes()
    assert raw.endswith(b"\n"), f"{out} ends in an unfinished line: {raw[-200:]!r}"
    return [json.loads(line) for line in raw.splitlines()]


def check_output(out: Path, tasks: int, repeats: int) -> list[dict[str, Any]]:
    """Every (task, repeat) exactly once, every row completed; return the rows."""
    rows = read_rows(out)
    keys = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows)
    expected = [(t, k) for t in range(tasks) for k in range(repeats)]
    assert keys == expected, f"{len(keys)} rows for {tasks}x{repeats}: {keys}"
    unfinished = [r["_ng_failure"] for r in rows if r["_ng_status"] != "completed"]
    assert unfinished == [], unfinished
    return rows


def fake_get(base_url: str, path: str) -> Any:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + path, timeout=10) as resp:
        return json.loads(resp.read())


def fake_faults(base_url: str, **settings: Any) -> Any:
    """``POST /fake/faults`` on the fake endpoint (``hang_next``, ``cut_next``, ``release``)."""
    request = urllib.request.Request(
        base_url.removesuffix("/v1") + "/fake/faults",
        data=json.dumps(settings).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def resume(command: list[str], timeout: float = 120) -> Proc:
    """Run ``command`` again with ``+resume=true``; return it once it exited 0."""
    again = Proc([*command, "+resume=true"])
    assert again.wait(timeout) == 0, again.text
    return again
