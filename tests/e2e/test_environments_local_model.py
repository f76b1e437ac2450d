"""Every environment end to end through ng_run on the embedded local model.

Rewards need not be high (the model is SmolLM2-135M); they must be computed and recorded:
every row is verified (completed or truncated) with a numeric reward.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import BIN, Proc, free_port

pytestmark = pytest.mark.e2e
ENVIRONMENTS = ["example_single_tool_call", "example_stateful_counter", "example_multi_step"]


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_collection_on_the_embedded_model(name: str, tmp_path: Path) -> None:
    port = free_port()
    configs = (
        f"resources_servers/{name}/configs/{name}.yaml,"
        "responses_api_models/openai_model/configs/openai_model.yaml"
    )
    run = Proc(
        [
            str(BIN / "ng_run"),
            f"+config_paths=[{configs}]",
            "+policy_base_url=null",
            f"+head_server.port={port}",
            "+graceful_shutdown_s=5",
            "+echo_logs=false",
        ]
    )
    try:
        run.wait_line("servers healthy in", timeout=120)
        out = tmp_path / f"{name}.jsonl"
        collect = Proc(
            [
                str(BIN / "ng_collect_rollouts"),
                f"+agent_name={name}_simple_agent",
                f"+input_jsonl_fpath=resources_servers/{name}/data/example.jsonl",
                f"+output_jsonl_fpath={out}",
                "+limit=3",
                "+responses_create_params.max_output_tokens=48",
                f"+head_server.port={port}",
            ]
        )
        assert collect.wait(600) == 0, collect.text + run.text
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 3
        for row in rows:
            assert row["_ng_status"] in ("completed", "truncated"), row["_ng_failure"]
            assert isinstance(row["reward"], float)
            assert any(i["type"] == "function_call" for i in row["response"]["output"])
    finally:
        run.stop()
    assert run.popen.returncode == 0
