"""The guide's walkthrough with no key and no network: the embedded local model is the policy.

Real ng_run (policy_base_url unset, so policy_model becomes local_model), real client.py, real
ng_collect_rollouts; the model is SmolLM2-135M on llama.cpp. Rewards need not be high; they
must be computed and recorded.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import BIN, WEATHER_CONFIGS, Proc, free_port

pytestmark = pytest.mark.e2e
AGENT = "example_single_tool_call_simple_agent"
DATA = "resources_servers/example_single_tool_call/data/example.jsonl"


def test_walkthrough_on_the_embedded_model(tmp_path: Path) -> None:
    port = free_port()
    run = Proc(
        [
            str(BIN / "ng_run"),
            f"+config_paths=[{WEATHER_CONFIGS}]",
            "+policy_base_url=null",
            f"+head_server.port={port}",
            "+graceful_shutdown_s=5",
        ]
    )
    try:
        run.wait_line("servers healthy in", timeout=120)
        assert "no policy_base_url configured: policy_model is the embedded local model" in run.text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_instances") as resp:
            rows = {r["name"]: r for r in json.loads(resp.read())}
        assert rows["policy_model"]["implementation"] == "local_model"

        client = Proc(
            [
                sys.executable,
                "responses_api_agents/simple_agent/client.py",
                f"+head_server.port={port}",
            ]
        )
        assert client.wait(300) == 0, client.text
        items = json.loads(client.text)
        assert items[0]["type"] == "function_call" and items[0]["name"] == "get_weather"
        assert isinstance(json.loads(items[0]["arguments"])["city"], str)
        outputs = [i for i in items if i["type"] == "function_call_output"]
        assert outputs and "is cold." in json.loads(outputs[0]["output"])["weather_description"]

        out = tmp_path / "results" / "my_first_rollouts.jsonl"
        collect = Proc(
            [
                str(BIN / "ng_collect_rollouts"),
                f"+agent_name={AGENT}",
                f"+input_jsonl_fpath={DATA}",
                f"+output_jsonl_fpath={out}",
                "+limit=5",
                "+num_repeats=2",
                "+responses_create_params.max_output_tokens=48",
                f"+head_server.port={port}",
            ]
        )
        assert collect.wait(600) == 0, collect.text
        assert "Found 10 rows!" in collect.lines and "Repeating rows from 5 to 10!" in collect.lines
        rows_out = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows_out) == 10
        for row in rows_out:
            assert row["_ng_status"] in ("completed", "truncated")
            assert row["reward"] == 1.0
            assert row["response"]["model"] == "SmolLM2-135M-Instruct"
        assert "mean reward 1 (95% CI 0.722 to 1) over 10 of 10 rows" in collect.text
    finally:
        run.stop()
    assert run.popen.returncode == 0
