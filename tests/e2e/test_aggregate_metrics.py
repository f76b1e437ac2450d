"""The aggregate-metrics file of a real ``ng_run`` + ``ng_collect_rollouts``, checked by hand.

An environment written in NeMo Gym's style (``compute_metrics`` with
``compute_pass_majority_metrics``, ``get_key_metrics`` with ``highest_k_metrics``, a
``BaseMultiRewardVerifyResponse`` with ``reward_components``) lives in a tmp project
(``NEMO_GYM_ROOT``) beside the repository's simple_agent and openai_model; a fake OpenAI
endpoint stands in for the remote API. Its verifier scores each rollout from the row's script
(``outcomes[_ng_rollout_index]``), so the numbers are known in advance:

    task 0: (1, "4"), (0, "5"), (1, "4")     format 1.0
    task 1: (0, "x"), (0, "y"), (1, "z")     format 0.5
    task 2: the model answers HTTP 400 -> three failed rows, never averaged in

By hand: mean reward 3/6 = 0.5 (not 3/9), sample std sqrt(0.3); format mean 0.75;
pass@1 = mean(2/3, 1/3) = 50%, pass@2 = mean(1, 1 - C(2,2)/C(3,2)) = 83.33%, pass@3 = 100%;
majority@3 = mean(1, 1/3) = 66.67%, majority@2 = mean(1/2, 0) = 25%.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, ng_run

pytestmark = pytest.mark.e2e
AGENT = "scripted_math_simple_agent"

APP = """
from typing import Any, Dict, List, Optional

from pydantic import Field

from nemo_gym.base_resources_server import (
    BaseMultiRewardVerifyResponse,
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    SimpleResourcesServer,
)
from nemo_gym.reward_profile import compute_pass_majority_metrics, highest_k_metrics


class ScriptedMathConfig(BaseResourcesServerConfig):
    pass


class ScriptedVerifyRequest(BaseVerifyRequest):
    outcomes: List[List[Any]]
    format_score: float
    rollout_index: int = Field(alias="_ng_rollout_index")


class ScriptedVerifyResponse(BaseMultiRewardVerifyResponse):
    extracted_answer: Optional[str] = None


class ScriptedMathServer(SimpleResourcesServer):
    config: ScriptedMathConfig

    async def verify(self, body: ScriptedVerifyRequest) -> ScriptedVerifyResponse:
        reward, answer = body.outcomes[body.rollout_index]
        return ScriptedVerifyResponse(
            **body.model_dump(),
            reward=reward,
            extracted_answer=answer,
            reward_components={"correct": reward, "format": body.format_score},
        )

    def compute_metrics(self, tasks: List[List[Dict[str, Any]]]) -> Dict[str, Any]:
        return compute_pass_majority_metrics(tasks, answer_key="extracted_answer")[0]

    def get_key_metrics(self, agent_metrics: Dict[str, Any]) -> Dict[str, Any]:
        key = {"mean/reward": agent_metrics["mean/reward"]}
        key.update(highest_k_metrics(agent_metrics, "pass@{k}", exclude_names=["no_answer"]))
        key.update(highest_k_metrics(agent_metrics, "majority@{k}", exclude_names=["no_answer"]))
        return key


if __name__ == "__main__":
    ScriptedMathServer.run_webserver()
"""
CONFIG = """
scripted_math:
  resources_servers:
    scripted_math:
      entrypoint: app.py
      domain: math
scripted_math_simple_agent:
  responses_api_agents:
    simple_agent:
      entrypoint: app.py
      resources_server: {type: resources_servers, name: scripted_math}
      model_server: {type: responses_api_models, name: policy_model}
"""
TASKS = [
    {"input": "What is 2 + 2?", "outcomes": [[1.0, "4"], [0.0, "5"], [1.0, "4"]], "format": 1.0},
    {"input": "Name a letter.", "outcomes": [[0.0, "x"], [0.0, "y"], [1.0, "z"]], "format": 0.5},
    {"input": "FAKE_HTTP_400", "outcomes": [[1.0, "1"]] * 3, "format": 1.0},
]


def project(root: Path) -> None:
    env = root / "resources_servers" / "scripted_math"
    (env / "configs").mkdir(parents=True)
    (env / "app.py").write_text(APP)
    (env / "configs" / "scripted_math.yaml").write_text(CONFIG)
    for kind, name in (
        ("responses_api_agents", "simple_agent"),
        ("responses_api_models", "openai_model"),
    ):
        (root / kind).mkdir(exist_ok=True)
        (root / kind / name).symlink_to(REPO / kind / name)
    rows = [
        {
            "responses_create_params": {"input": t["input"]},
            "outcomes": t["outcomes"],
            "format_score": t["format"],
        }
        for t in TASKS
    ]
    (root / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_metrics_file_holds_the_hand_computed_numbers(tmp_path: Path) -> None:
    project(tmp_path)
    env = {"NEMO_GYM_ROOT": str(tmp_path)}
    configs = (
        "resources_servers/scripted_math/configs/scripted_math.yaml,"
        "responses_api_models/openai_model/configs/openai_model.yaml"
    )
    port = free_port()
    out = tmp_path / "results" / "run.jsonl"
    with fake_openai_process() as base_url:
        server = ng_run(port, base_url, configs=configs, env=env)
        try:
            server.wait_line("servers healthy in", timeout=90)
            collect = Proc(
                [
                    str(BIN / "ng_collect_rollouts"),
                    f"+agent_name={AGENT}",
                    f"+input_jsonl_fpath={tmp_path / 'tasks.jsonl'}",
                    f"+output_jsonl_fpath={out}",
                    "+num_repeats=3",
                    f"+head_server.port={port}",
                ],
                env=env,
            )
            assert collect.wait(120) == 3, collect.text  # some rollouts failed
        finally:
            server.stop()

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["_ng_status"] for r in rows) == ["completed"] * 6 + ["failed"] * 3
    kept = [r for r in rows if r["_ng_status"] == "completed"]
    assert all(set(r["reward_components"]) == {"correct", "format"} for r in kept)

    (entry,) = json.loads((tmp_path / "results" / "run_aggregate_metrics.json").read_text())
    assert entry["agent_ref"] == {"name": AGENT}
    assert (entry["num_scored"], entry["num_failed"]) == (6, 3)
    metrics = entry["agent_metrics"]
    assert metrics["mean/reward"] == 0.5
    assert metrics["std/reward"] == pytest.approx(math.sqrt(0.3), abs=1e-12)
    assert metrics["mean/reward_components/format"] == 0.75
    assert metrics["mean/output_tokens"] == 5  # the fake model's usage, one call per rollout
    assert metrics["pass@1/accuracy"] == pytest.approx(50.0)
    assert metrics["pass@2/accuracy"] == pytest.approx(100 * 5 / 6)
    assert metrics["majority@2/accuracy"] == pytest.approx(25.0)
    assert entry["key_metrics"] == pytest.approx(
        {"mean/reward": 0.5, "pass@3/accuracy": 100.0, "majority@3/accuracy": 100 * 2 / 3}
    )
    groups = entry["group_level_metrics"]
    assert [(g["_ng_task_index"], g["num_rollouts"]) for g in groups] == [(0, 3), (1, 3)]
    assert groups[0]["mean/reward"] == pytest.approx(2 / 3)
    assert groups[1]["mean/reward_components/format"] == 0.5

    text = collect.text
    assert f"Key metrics for {AGENT}:" in text
    assert '"majority@3/accuracy": 66.66666666666' in text
    assert '"reward_components/format": 0.75' in text  # the summary's averages
    assert "pass@k and majority@k (%, over 2 tasks, scored rollouts only):" in text
    assert '"pass@2": 83.3333' in text and '"majority@2": 25.0' in text
    assert f"Aggregate metrics: {tmp_path / 'results' / 'run_aggregate_metrics.json'}" in text
