"""After ``ng_run`` says all servers stopped, no process it or its servers started is running.

The math environment verifies in a pool of worker processes and code_gen runs programs in
sandboxes; both are exercised through ``/verify`` before Ctrl+C, in fork and in spawn mode, and
every descendant of ng_run seen while it served must be gone once it has exited.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, fake_openai_process, free_port, ng_run

pytestmark = pytest.mark.e2e
CONFIGS = (
    "resources_servers/math_with_judge/configs/math_with_judge.yaml,"
    "resources_servers/code_gen/configs/code_gen.yaml,"
    "responses_api_models/openai_model/configs/openai_model.yaml"
)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def verify(url: str, row: dict[str, Any], text: str) -> dict[str, Any]:
    response = {
        "id": "r",
        "object": "response",
        "created_at": 0,
        "model": "m",
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "output": [
            {
                "type": "message",
                "id": "m",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
    }
    request = urllib.request.Request(
        f"{url}/verify",
        json.dumps({**row, "response": response}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        return dict(json.loads(resp.read()))


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_no_process_outlives_ng_run(mode: str) -> None:
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url, f"+start_mode={mode}", configs=CONFIGS)
        try:
            run.wait_line("servers healthy in", timeout=120)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_instances") as resp:
                urls = {r["name"]: r["url"] for r in json.loads(resp.read())}
            math = json.loads(
                (REPO / "resources_servers/math_with_judge/data/example.jsonl")
                .read_text()
                .splitlines()[0]
            )
            assert verify(urls["math_with_judge"], math, "\\boxed{55}")["reward"] == 1.0
            code = json.loads(
                (REPO / "resources_servers/code_gen/data/example.jsonl").read_text().splitlines()[0]
            )
            verify(urls["code_gen_resources_server"], code, "```python\nprint(input())\n```")
            seen = descendants(run.popen.pid)
            assert len(seen) > 4  # the servers, the head and at least the math worker pool
        finally:
            run.stop()
        assert run.popen.returncode == 0, run.text
        assert "All servers stopped." in run.text
    left = sorted(pid for pid in seen if alive(pid))
    described = [(pid, Path(f"/proc/{pid}/cmdline").read_bytes()[:200]) for pid in left]
    assert left == [], f"still running after ng_run stopped: {described}"
