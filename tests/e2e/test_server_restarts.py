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


def start_collection(port: int, tmp_path: Path, out: Path, *extra: str) -> Proc:
    """Collect 40 rollouts, 4 at a time, each model call taking 0.2 s (so rollouts are in
    flight when a kill lands); return once the first four rows are written."""
    row = json.loads(DATA.read_text().splitlines()[0])
    row["responses_create_params"]["input"][-1]["content"] = "FAKE_SLEEP_0.2 Oslo?"
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps(row) + "\n")
    collect = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={out}",
            "+num_repeats=40",
            "+num_samples_in_parallel=4",
            f"+head_server.port={port}",
            *extra,
        ]
    )
    wait_for(
        lambda: out.exists() and len(out.read_text().splitlines()) >= 4,
        60,
        "the first rollouts to finish",
    )
    return collect


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
            out = tmp_path / "out.jsonl"
            collect = start_collection(port, tmp_path, out)
            os.kill(target["pid"], signal.SIGKILL)
            run.wait_line(f"server {victim} (", timeout=30)
            run.wait_line("is back (pid", timeout=60)
            assert collect.wait(120) in (0, 3), collect.text
            written = [json.loads(line) for line in out.read_text().splitlines()]
            assert len(written) == 40  # nothing lost: every rollout is a row
            # The rollouts inside the killed server were run again once it was back.
            assert [r["_ng_status"] for r in written] == ["completed"] * 40, collect.text
            keys = [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in written]
            assert sorted(keys) == [(0, i) for i in range(40)]
            if victim != "example_single_tool_call":
                # Model calls take 0.2 s and the agent holds every rollout, so rollouts were
                # inside the killed server (a tool call is too short to be sure of that).
                # The breaker saw the server down (and paused) or already back with a new
                # start time (ng_run restarts it within a second or two): either way the
                # rollouts it failed ran again.
                paused = "not answering: collection paused until it is back" in collect.text
                assert paused or "restarted during a rollout: it runs again" in collect.text
            assert healthy(target["url"])  # same port, new process
            assert "was killed by SIGKILL; restarting it in 1s" in run.text
            # A resume finds nothing left to do.
            resumed = Proc([*collect.popen.args, "+resume=true"])  # type: ignore[misc]
            assert resumed.wait(120) == 0, resumed.text
            assert "0 to run" in resumed.text
            assert len(out.read_text().splitlines()) == 40
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


def test_a_server_that_stays_down_stops_the_collection_for_a_resume(tmp_path: Path) -> None:
    """With restarts off, a killed model stops ng_run; the collector pauses, then gives up.

    Nothing is burnt into failed rows: the output holds only rollouts that completed, and the
    collector exits 4 naming the servers that did not answer and the rollouts not run.
    """
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url, "+max_restarts=0")
        try:
            run.wait_line("servers healthy in", timeout=60)
            model = instances(port)["policy_model"]
            out = tmp_path / "out.jsonl"
            collect = start_collection(port, tmp_path, out, "+server_down_timeout_s=3")
            os.kill(model["pid"], signal.SIGKILL)
            assert collect.wait(120) == 4, collect.text
            written = [json.loads(line) for line in out.read_text().splitlines()]
            assert 4 <= len(written) < 40
            assert all(r["_ng_status"] == "completed" for r in written)
            assert f"{40 - len(written)} rollouts were not run" in collect.text
            assert "did not answer for" in collect.text and "policy_model" in collect.text
            assert "+resume=true" in collect.text
        finally:
            run.stop()
