"""The guide's walkthrough with the real commands as subprocesses on loopback ports.

Steps 4-8 of the getting-started guide: ng_run, /server_instances, client.py, ng_status,
ng_collect_rollouts, ng_viewer on the collected file, Ctrl+C. A fake OpenAI endpoint stands in
for the remote API.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, ng_run, wait_for

pytestmark = pytest.mark.e2e
SECRET = "sk-test-SECRET-4242"
AGENT = "example_single_tool_call_simple_agent"
DATA = "resources_servers/example_single_tool_call/data/example.jsonl"


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with fake_openai_process() as url:
        yield url


@pytest.fixture(scope="module")
def running(base_url: str) -> Iterator[tuple[Proc, int]]:
    port = free_port()
    proc = ng_run(port, base_url)
    try:
        proc.wait_line("servers healthy in", timeout=60)
        yield proc, port
    finally:
        proc.stop()


def test_servers_start_and_are_listed(running: tuple[Proc, int]) -> None:
    proc, port = running
    assert f"Uvicorn running on http://127.0.0.1:{port}" in proc.text
    rows = json.loads(get(f"http://127.0.0.1:{port}/server_instances"))
    assert {r["name"] for r in rows} == {"example_single_tool_call", AGENT, "policy_model"}
    for row in rows:
        assert row["status"] == "healthy" and row["pid"] > 0 and row["uptime_seconds"] >= 0
        assert row["url"] == f"http://127.0.0.1:{row['port']}"
        assert json.loads(get(row["url"] + "/health"))["status"] == "ok"
    by_name = {r["name"]: r for r in rows}
    assert by_name["policy_model"]["server_type"] == "responses_api_models"
    assert by_name[AGENT]["implementation"] == "simple_agent"


def test_secrets_never_leave_the_process(running: tuple[Proc, int]) -> None:
    proc, port = running
    served = get(f"http://127.0.0.1:{port}/global_config_dict_yaml").decode()
    assert "openai_api_key: '***REDACTED***'" in served or "***REDACTED***" in served
    assert SECRET not in served
    assert SECRET not in proc.text
    dump = Proc(
        [
            str(BIN / "ng_dump_config"),
            "+config_paths=[responses_api_models/openai_model/configs/openai_model.yaml]",
            "+policy_base_url=http://x/v1",
            f"+policy_api_key={SECRET}",
            "+policy_model_name=m",
        ]
    )
    assert dump.wait() == 0
    assert "openai_api_key: '***REDACTED***'" in dump.text and SECRET not in dump.text


def test_client_py_prints_the_tool_call_and_answer(running: tuple[Proc, int]) -> None:
    _, port = running
    client = Proc(
        [sys.executable, "responses_api_agents/simple_agent/client.py", f"+head_server.port={port}"]
    )
    assert client.wait() == 0, client.text
    items = json.loads(client.text)
    assert [i["type"] for i in items] == ["function_call", "function_call_output", "message"]
    assert items[0]["name"] == "get_weather"
    assert json.loads(items[0]["arguments"]) == {"city": "San Francisco"}
    assert (
        json.loads(items[1]["output"])["weather_description"]
        == "The weather in San Francisco is cold."
    )
    assert items[2]["role"] == "assistant"


def test_ng_status_reports_every_server_healthy(running: tuple[Proc, int]) -> None:
    _, port = running
    status = Proc([str(BIN / "ng_status"), f"+head_server.port={port}"])
    assert status.wait() == 0, status.text
    assert "3 servers found (3 healthy, 0 unhealthy)" in status.text
    assert f"✓ {AGENT} (responses_api_agents/simple_agent)" in status.text


def test_collect_rollouts_as_in_the_guide(running: tuple[Proc, int], tmp_path: Path) -> None:
    _, port = running
    out = tmp_path / "results" / "my_first_rollouts.jsonl"
    collect = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={DATA}",
            f"+output_jsonl_fpath={out}",
            "+limit=5",
            "+num_repeats=2",
            f"+head_server.port={port}",
        ]
    )
    assert collect.wait() == 0, collect.text
    assert "Found 10 rows!" in collect.lines
    assert "Repeating rows from 5 to 10!" in collect.lines
    assert '    "reward": 1.0' in collect.lines
    assert "Collecting rollouts: 100%" in collect.text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10
    assert sorted((r["_ng_task_index"], r["_ng_repeat_index"]) for r in rows) == [
        (t, k) for t in range(5) for k in range(2)
    ]
    for row in rows:
        assert row["_ng_status"] == "completed" and row["reward"] == 1.0
        assert set(row) >= {"responses_create_params", "response", "reward"}
        assert row["response"]["output"][-1]["type"] == "message"
    # Step 7: ng_viewer on that file serves its rows (the page itself: tests/viewer).
    viewer_port = free_port()
    viewer = Proc([str(BIN / "ng_viewer"), f"+jsonl_fpath={out}", f"+port={viewer_port}"])
    try:
        viewer.wait_line(f"http://127.0.0.1:{viewer_port}", timeout=60)
        summary = json.loads(get(f"http://127.0.0.1:{viewer_port}/api/files/0/summary"))
        assert b"<title>" in get(f"http://127.0.0.1:{viewer_port}/")
    finally:
        viewer.stop()
    assert viewer.popen.returncode == 0, viewer.text
    assert summary["rows"] == 10 and summary["status_counts"]["completed"] == 10, summary
    assert summary["reward"]["mean"] == 1.0 and summary["reward"]["n"] == 10, summary


def test_unknown_agent_is_a_clear_error(running: tuple[Proc, int], tmp_path: Path) -> None:
    _, port = running
    collect = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            "+agent_name=nope",
            f"+input_jsonl_fpath={DATA}",
            f"+output_jsonl_fpath={tmp_path / 'o.jsonl'}",
            f"+head_server.port={port}",
        ]
    )
    assert collect.wait() != 0
    assert "no server instance named 'nope'" in collect.text and AGENT in collect.text


def test_malformed_input_line_stops_before_any_work(
    running: tuple[Proc, int], tmp_path: Path
) -> None:
    _, port = running
    bad = tmp_path / "bad.jsonl"
    good = Path(REPO / DATA).read_text().splitlines()[0]
    bad.write_text(f"{good}\n{good}\n{{oops\n")
    out = tmp_path / "o.jsonl"
    collect = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={bad}",
            f"+output_jsonl_fpath={out}",
            f"+head_server.port={port}",
        ]
    )
    assert collect.wait() == 1
    assert f"{bad}:3: not valid JSON" in collect.text
    assert not out.exists()


def test_ctrl_c_during_collection_leaves_only_whole_lines_and_resume_finishes(
    running: tuple[Proc, int], tmp_path: Path
) -> None:
    _, port = running
    slow = tmp_path / "slow.jsonl"
    row = json.loads(Path(REPO / DATA).read_text().splitlines()[0])
    row["responses_create_params"]["input"][-1]["content"] = "FAKE_SLEEP_0.2 weather in Paris"
    slow.write_text("".join(json.dumps(row) + "\n" for _ in range(30)))
    out = tmp_path / "out.jsonl"
    args = [
        str(BIN / "ng_collect_rollouts"),
        f"+agent_name={AGENT}",
        f"+input_jsonl_fpath={slow}",
        f"+output_jsonl_fpath={out}",
        "+num_samples_in_parallel=3",
        f"+head_server.port={port}",
    ]
    collect = Proc(args)
    wait_for(lambda: out.exists() and out.read_text().count("\n") >= 3, 30, "a few rows written")
    collect.interrupt()
    assert collect.wait(30) == 130, collect.text
    assert "Interrupted:" in collect.text and "+resume=true" in collect.text
    raw = out.read_bytes()
    assert raw.endswith(b"\n")
    first = [json.loads(line) for line in raw.splitlines()]  # every line parses
    assert 3 <= len(first) < 30
    resumed = Proc([*args, "+resume=true"])
    assert resumed.wait(60) == 0, resumed.text
    rows = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(r["_ng_task_index"] for r in rows) == list(range(30))
    # 30 of 30 rewards of 1: the Wilson interval is [0.886, 1]
    assert "mean reward 1 (95% CI 0.886 to 1) over 30 of 30 rows, 0 failed" in resumed.text


def test_ctrl_c_stops_everything_and_exits_zero(base_url: str) -> None:
    port = free_port()
    proc = ng_run(port, base_url)
    proc.wait_line("servers healthy in", timeout=60)
    rows = json.loads(get(f"http://127.0.0.1:{port}/server_instances"))
    proc.interrupt()
    assert proc.wait(60) == 0, proc.text
    assert "All servers stopped." in proc.text
    for row in rows:
        with pytest.raises(ProcessLookupError):
            os.kill(row["pid"], 0)


def test_a_server_that_keeps_dying_stops_the_run(base_url: str) -> None:
    port = free_port()
    proc = ng_run(port, base_url, "+max_restarts=0")
    proc.wait_line("servers healthy in", timeout=60)
    rows = json.loads(get(f"http://127.0.0.1:{port}/server_instances"))
    victim = next(r for r in rows if r["name"] == "policy_model")
    os.kill(victim["pid"], signal.SIGKILL)
    assert proc.wait(60) == 1
    assert (
        "server policy_model (responses_api_models/openai_model) was killed by SIGKILL, "
        "after 0 restarts in 300s" in proc.text
    )


def test_spawn_mode_runs_the_same_servers(base_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc = ng_run(port, base_url, "+start_mode=spawn")
    try:
        proc.wait_line("servers healthy in", timeout=90)
        out = tmp_path / "o.jsonl"
        collect = Proc(
            [
                str(BIN / "ng_collect_rollouts"),
                f"+agent_name={AGENT}",
                f"+input_jsonl_fpath={DATA}",
                f"+output_jsonl_fpath={out}",
                "+limit=2",
                f"+head_server.port={port}",
            ]
        )
        assert collect.wait() == 0, collect.text
        assert len(out.read_text().splitlines()) == 2
    finally:
        proc.stop()
    assert proc.popen.returncode == 0


def test_ctrl_c_lets_in_flight_rollouts_finish(base_url: str, tmp_path: Path) -> None:
    stats_url = base_url.removesuffix("/v1") + "/fake/stats"
    port = free_port()
    proc = ng_run(port, base_url)
    proc.wait_line("servers healthy in", timeout=60)
    row = json.loads(Path(REPO / DATA).read_text().splitlines()[0])
    row["responses_create_params"]["input"][-1]["content"] = "FAKE_SLEEP_1 weather in Oslo"
    slow = tmp_path / "slow.jsonl"
    slow.write_text("".join(json.dumps(row) + "\n" for _ in range(4)))
    out = tmp_path / "out.jsonl"
    before = json.loads(get(stats_url))["requests"]
    collect = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={slow}",
            f"+output_jsonl_fpath={out}",
            "+num_samples_in_parallel=4",
            f"+head_server.port={port}",
        ]
    )
    wait_for(
        lambda: json.loads(get(stats_url))["requests"] >= before + 4,
        30,
        "all four rollouts to reach the model",
    )
    proc.interrupt()  # Ctrl+C on ng_run while four rollouts are in flight
    assert collect.wait(60) == 0, collect.text
    assert proc.wait(60) == 0, proc.text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["_ng_status"] for r in rows] == ["completed"] * 4
