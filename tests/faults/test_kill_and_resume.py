"""``kill -9`` of each server kind mid-collection with restarts off, then ``+resume=true`` on a
fresh ``ng_run``: nothing lost, nothing twice, every row completed.

With ``+max_restarts=0`` a killed agent, resources or model server stays down: the collector
pauses, gives up after ``+server_down_timeout_s`` (exit 4) and writes only the rollouts that
completed; the rollouts that were inside the dead server are not written as failed rows. The
head server's death does not stop the collection at all. Either way a resume against a new
``ng_run`` runs exactly what is missing. (With restarts on, ``tests/e2e/test_server_restarts.py``
checks that the same run finishes by itself.)
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_server_restarts import child_named
from tests.faults.support import (
    AGENT,
    check_output,
    collect_command,
    read_rows,
    resume,
    wait_rows,
    write_input,
)
from tests.helpers import Proc, fake_openai_process, free_port, ng_run

pytestmark = pytest.mark.e2e
VICTIMS = {
    "agent": AGENT,
    "resources": "example_single_tool_call",
    "model": "policy_model",
    "head": "head_server",
}


def pid_of(run: Proc, port: int, name: str) -> int:
    if name == "head_server":
        return child_named(run.popen.pid, "ng:head_server")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_instances", timeout=10) as r:
        return int({row["name"]: row["pid"] for row in json.loads(r.read())}[name])


@pytest.mark.parametrize("kind", list(VICTIMS))
def test_kill_9_mid_collection_then_resume_loses_and_repeats_nothing(
    kind: str, tmp_path: Path
) -> None:
    repeats = 30
    victim = VICTIMS[kind]
    with fake_openai_process() as base_url:
        port = free_port()
        out = tmp_path / "out.jsonl"
        data = write_input(tmp_path / "in.jsonl", "FAKE_SLEEP_0.2 Oslo?")
        command = collect_command(port, data, out, repeats, 4)
        run = ng_run(port, base_url, "+max_restarts=0")
        try:
            run.wait_line("servers healthy in", timeout=60)
            collect = Proc([*command, "+server_down_timeout_s=2"])
            wait_rows(out, 4)
            os.kill(pid_of(run, port, victim), signal.SIGKILL)
            code = collect.wait(120)
        finally:
            run.stop()
        first = read_rows(out)
        keys = [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in first]
        assert len(set(keys)) == len(keys)  # nothing twice
        assert all(r["_ng_status"] == "completed" for r in first)  # no row burnt as failed
        if kind == "head":  # rollouts do not need the head server
            assert code == 0, collect.text
            assert len(first) == repeats
        else:
            assert code == 4, collect.text
            assert 4 <= len(first) < repeats
            assert f"{repeats - len(first)} rollouts were not run" in collect.text

        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=60)
            again = resume(command)
            assert f"{len(first)} rows of this run already in {out}" in again.text
            assert f"{repeats - len(first)} to run" in again.text
        finally:
            run.stop()
        check_output(out, 1, repeats)
