"""The trainers' Python API, called exactly as NeMo RL's NeMo Gym integration calls it.

NeMo RL (``nemo_rl/environments/nemo_gym.py``) builds a config dict in code, starts the servers
with ``RunHelper().start(GlobalConfigDictParserConfig(...))``, sends rows carrying ``agent_ref``
and ``_rowidx`` through ``RolloutCollectionHelper().run_examples(...)`` and awaits each result as
it finishes, then checks every model turn's token fields: the prompt must extend all tokens
seen so far, log-probs must not be NaN, the reward must be a number. Here the policy is
``vllm_model`` in training mode with ``policy_base_url`` a list, as NeMo RL sets it; the "vLLM"
behind it is Gym's own local_model (real llama.cpp), whose Chat Completions endpoint returns
vLLM's token fields.
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from omegaconf import DictConfig

from tests.helpers import REPO, free_port

pytestmark = pytest.mark.e2e
AGENT = "example_single_tool_call_simple_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"


def nemo_rl_checks(result: dict[str, Any]) -> int:
    """NeMo RL's post-processing checks; returns the number of model turns seen."""
    seen: list[int] = []
    turns = 0
    for item in result["response"]["output"]:
        if not item.get("generation_token_ids"):
            continue
        assert item["prompt_token_ids"][: len(seen)] == seen, "prompt does not extend history"
        assert len(item["generation_log_probs"]) == len(item["generation_token_ids"])
        assert not any(math.isnan(lp) for lp in item["generation_log_probs"])
        seen += item["prompt_token_ids"][len(seen) :] + item["generation_token_ids"]
        turns += 1
    assert isinstance(result["reward"], (int, float))
    return turns


def test_run_helper_and_run_examples_as_nemo_rl_calls_them(tmp_path: Path) -> None:
    from nemo_gym.cli import GlobalConfigDictParserConfig, RunHelper
    from nemo_gym.rollout_collection import RolloutCollectionHelper, RolloutError
    from nemo_gym.server_utils import HEAD_SERVER_KEY_NAME, BaseServerConfig

    upstream, head_port = free_port(), free_port()
    initial: dict[str, Any] = {
        "config_paths": [
            "resources_servers/example_single_tool_call/configs/example_single_tool_call.yaml",
            "responses_api_models/vllm_model/configs/vllm_model_for_training.yaml",
        ],
        "policy_model_name": "SmolLM2-135M-Instruct",
        "policy_api_key": "dummy_key",
        "policy_base_url": [f"http://127.0.0.1:{upstream}/v1"],
        "default_host": "127.0.0.1",
        "global_aiohttp_connector_limit_per_host": 16_384,
        "global_aiohttp_connector_limit": 65_536,
        HEAD_SERVER_KEY_NAME: {"host": "127.0.0.1", "port": head_port},
        # The stand-in for the trainer's vLLM servers.
        "vllm_stand_in": {
            "responses_api_models": {
                "local_model": {
                    "entrypoint": "app.py",
                    "port": upstream,
                    "n_instances": 2,
                    "guided_tool_use": True,
                }
            }
        },
    }
    rh = RunHelper()
    rh.start(
        global_config_dict_parser_config=GlobalConfigDictParserConfig(
            dotenv_path=tmp_path / "nemo_gym_env.yaml",
            initial_global_config_dict=DictConfig(initial),
            skip_load_from_cli=True,
        )
    )
    try:
        rh.poll()
        rows = [orjson.loads(line) for line in DATA.read_bytes().splitlines()[:3]]
        examples = [
            {
                **row,
                "agent_ref": {"type": "responses_api_agents", "name": AGENT},
                "_rowidx": i,
                "responses_create_params": {
                    **row["responses_create_params"],
                    "temperature": 0.8,
                    "top_p": 1.0,
                    "max_output_tokens": 64,
                },
            }
            for i, row in enumerate(rows)
        ]
        bad = {
            "agent_ref": {"type": "responses_api_agents", "name": AGENT},
            "_rowidx": 99,
            "responses_create_params": {"input": 123},
        }
        head = BaseServerConfig(host="127.0.0.1", port=head_port)

        async def collect() -> tuple[dict[int, dict[str, Any]], list[RolloutError]]:
            results: dict[int, dict[str, Any]] = {}
            errors: list[RolloutError] = []
            helper = RolloutCollectionHelper()
            for task in helper.run_examples(examples=[*examples, bad], head_server_config=head):
                try:
                    row, result = await task
                except RolloutError as exc:
                    errors.append(exc)
                    continue
                results[row["_rowidx"]] = result
            return results, errors

        results, errors = asyncio.run(collect())
        assert sorted(results) == [0, 1, 2]
        for result in results.values():
            # guided tool use: a tool call, then an answer, each a trained turn
            assert nemo_rl_checks(result) == 2
        assert len(errors) == 1 and errors[0].row["_ng_status"] == "failed"
        assert errors[0].status == 422  # bad data: the trainer must not retry it
        rh.poll()
    finally:
        rh.shutdown()
    with pytest.raises(RuntimeError, match="finished unexpectedly|supervisor stopped"):
        rh.poll()
    assert os.environ.get("NEMO_GYM_CONFIG_DICT") is None  # nothing leaked into our process
