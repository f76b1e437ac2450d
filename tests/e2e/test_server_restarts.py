"""A server killed with SIGKILL while rollouts run is started again on its port; the run goes on.

Real ng_run on the weather environment, a fake OpenAI endpoint whose answers take a moment (so
rollouts are in flight when the kill lands), and the real ng_collect_rollouts. Rollouts that
were inside the killed server fail and are recorded as failed; every other rollout completes,
including those that reach the server while it restarts (its listening socket stays open, so
they wait instead of being refused). The head server is not restarted: rollouts do not need it.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, ng_run, wait_for

pytestmark = pytest.mark.e2e
AGENT = "example_single_tool_call_simple_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"


def instances(port: int) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_instances", timeout=10) as r:
        return {row["name"]: row for row in json.loads(r.read())}


def child_named(parent: int, comm: str) -> int:
    """The pid of ``parent``'s child whose process name is ``comm``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and name == comm:
            return int(entry.name)
    raise AssertionError(f"no child {comm!r} of {parent}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.parametrize(
    "victim",
    ["example_single_tool_call", "example_single_tool_call_simple_agent", "policy_model"],
    ids=["resources", "agent", "model"],
)
def test_a_killed_server_is_restarted_and_the_collection_finishes(
    victim: str, tmp_path: Path
) -> None:
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=60)
            target = instances(port)[victim]
            row = json.loads(DATA.read_text().splitlines()[0])
            # each model call takes 0.2 s, so rollouts are in flight when the kill lands
            row["responses_create_params"]["input"][-1]["content"] = "FAKE_SLEEP_0.2 Oslo?"
            data = tmp_path / "in.jsonl"
            data.write_text(json.dumps(row) + "\n")
            out = tmp_path / "out.jsonl"
            collect = Proc(
                [
                    str(BIN / "ng_collect_rollouts"),
                    f"+agent_name={AGENT}",
                    f"+input_jsonl_fpath={data}",
                    f"+output_jsonl_fpath={out}",
                    "+num_repeats=40",
                    "+num_samples_in_parallel=4",
                    f"+head_server.port={port}",
                ]
            )
            wait_for(
                lambda: out.exists() and len(out.read_text().splitlines()) >= 4,
                60,
                "the first rollouts to finish",
            )
            os.kill(target["pid"], signal.SIGKILL)
            run.wait_line(f"server {victim} (", timeout=30)
            run.wait_line("is back (pid", timeout=60)
            assert collect.wait(120) in (0, 3), collect.text
            written = [json.loads(line) for line in out.read_text().splitlines()]
            assert len(written) == 40  # nothing lost: every rollout is a row
            failed = [r for r in written if r["_ng_status"] == "failed"]
            assert len(failed) <= 4  # at most those in flight inside the killed server
            assert sum(r["_ng_status"] == "completed" for r in written) >= 36
            assert healthy(target["url"])  # same port, new process
            assert "was killed by SIGKILL; restarting it in 1s" in run.text
            # Resume runs what failed again: every (task, repeat) once, all completed.
            resumed = Proc([*collect.popen.args, "+resume=true"])  # type: ignore[misc]
            assert resumed.wait(120) == 0, resumed.text
            final = [json.loads(line) for line in out.read_text().splitlines()]
            keys = [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in final]
            assert sorted(keys) == [(0, i) for i in range(40)]
            assert all(r["_ng_status"] == "completed" for r in final)
            retried = [r for r in final if r["_ng_attempt_index"] == 1]
            assert len(retried) == len(failed)
            if failed:  # the failed attempts are kept beside the output, not in it
                moved = out.with_name("out_failures.jsonl").read_text().splitlines()
                assert len(moved) == len(failed)
        finally:
            run.stop()


def test_the_head_servers_death_does_not_stop_the_run(tmp_path: Path) -> None:
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=60)
            agent = instances(port)[AGENT]
            os.kill(child_named(run.popen.pid, "ng:head_server"), signal.SIGKILL)
            run.wait_line(
                "WARNING: head_server (head_server/head_server) was killed by SIGKILL", timeout=30
            )
            wait_for(lambda: not healthy(f"http://127.0.0.1:{port}"), 10, "the head to go")
            row = json.loads(DATA.read_text().splitlines()[0])
            request = urllib.request.Request(
                f"{agent['url']}/run",
                data=json.dumps(row).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as resp:
                assert json.loads(resp.read())["_ng_status"] == "completed"
            assert run.popen.poll() is None  # still serving
        finally:
            run.stop()
