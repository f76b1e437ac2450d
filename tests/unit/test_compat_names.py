"""Every ``nemo_gym`` name NeMo Gym's own environments and agents import exists in Gym.

The list was derived from NeMo Gym's source (``NVIDIA-NeMo/Gym``): every
``from nemo_gym... import ...`` in ``resources_servers/``, ``responses_api_agents/`` and
``responses_api_models/`` of the January 2026 tree (commit ``ef870d6db``, the guide's era) and
of the August 2026 head (marked ``# head``), restricted to the modules Gym provides. Names of
modules Gym does not provide (sandboxes, prompt files, observability, ...) and the few below in
``NOT_PROVIDED`` are listed in the compatibility notes with the reason.
"""

from __future__ import annotations

import importlib

import pytest

NAMES = [
    ("nemo_gym", "CACHE_DIR"),  # head
    ("nemo_gym", "PARENT_DIR"),
    ("nemo_gym", "RESULTS_DIR"),  # head
    ("nemo_gym.base_resources_server", "AggregateMetrics"),  # head
    ("nemo_gym.base_resources_server", "AggregateMetricsRequest"),  # head
    ("nemo_gym.base_resources_server", "BaseMultiRewardVerifyResponse"),  # head
    ("nemo_gym.base_resources_server", "BaseResourcesServerConfig"),
    ("nemo_gym.base_resources_server", "BaseRunRequest"),
    ("nemo_gym.base_resources_server", "BaseSeedSessionRequest"),
    ("nemo_gym.base_resources_server", "BaseSeedSessionResponse"),
    ("nemo_gym.base_resources_server", "BaseVerifyRequest"),
    ("nemo_gym.base_resources_server", "BaseVerifyResponse"),
    ("nemo_gym.base_resources_server", "NEMO_GYM_MCP_METADATA_KEY"),  # head
    ("nemo_gym.base_resources_server", "NeMoGymResponse"),
    ("nemo_gym.base_resources_server", "ReverifyMode"),  # head
    ("nemo_gym.base_resources_server", "SimpleResourcesServer"),
    ("nemo_gym.base_responses_api_agent", "AggregateMetricsRequest"),  # head
    ("nemo_gym.base_responses_api_agent", "BaseResponsesAPIAgentConfig"),
    ("nemo_gym.base_responses_api_agent", "Body"),
    ("nemo_gym.base_responses_api_agent", "SimpleResponsesAPIAgent"),
    ("nemo_gym.base_responses_api_model", "BaseResponsesAPIModelConfig"),
    ("nemo_gym.base_responses_api_model", "Body"),
    ("nemo_gym.base_responses_api_model", "SimpleResponsesAPIModel"),
    ("nemo_gym.config_types", "AggregateMetrics"),  # head
    ("nemo_gym.config_types", "AggregateMetricsRequest"),  # head
    ("nemo_gym.config_types", "BaseServerConfig"),  # head
    ("nemo_gym.config_types", "ModelServerRef"),
    ("nemo_gym.config_types", "OmegaConf"),  # head
    ("nemo_gym.config_types", "ResourcesServerRef"),
    ("nemo_gym.global_config", "AGENT_REF_KEY_NAME"),  # head
    ("nemo_gym.global_config", "ATTEMPT_INDEX_KEY_NAME"),  # head
    ("nemo_gym.global_config", "CACHE_DIR_KEY_NAME"),  # head
    ("nemo_gym.global_config", "DISALLOWED_PORTS_KEY_NAME"),
    ("nemo_gym.global_config", "DictConfig"),
    ("nemo_gym.global_config", "HF_TOKEN_KEY_NAME"),
    ("nemo_gym.global_config", "OmegaConf"),  # head
    ("nemo_gym.global_config", "RESULTS_DIR_KEY_NAME"),  # head
    ("nemo_gym.global_config", "ROLLOUT_INDEX_KEY_NAME"),  # head
    ("nemo_gym.global_config", "SKILLS_REF_KEY_NAME"),  # head
    ("nemo_gym.global_config", "TASK_INDEX_KEY_NAME"),  # head
    ("nemo_gym.global_config", "find_open_port"),
    ("nemo_gym.global_config", "get_first_server_config_dict"),  # head
    ("nemo_gym.global_config", "get_global_config_dict"),
    ("nemo_gym.global_config", "get_hf_token"),  # head
    ("nemo_gym.global_config", "maybe_get_global_config_dict"),  # head
    ("nemo_gym.judge", "JudgeError"),  # head
    ("nemo_gym.judge", "call_judge"),  # head
    ("nemo_gym.judge", "judge_failsafe"),  # head
    ("nemo_gym.judge", "reraise_judge_errors"),  # head
    ("nemo_gym.openai_utils", "NeMoGymAsyncOpenAI"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletion"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionAssistantMessageForTrainingParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionAssistantMessageParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionContentPartTextParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionCreateParamsNonStreaming"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionDeveloperMessageParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionMessage"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionMessageForTraining"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionMessageParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionMessageToolCall"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionMessageToolCallFunctionParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionMessageToolCallParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionSystemMessageParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionToolMessageParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionToolParam"),
    ("nemo_gym.openai_utils", "NeMoGymChatCompletionUserMessageParam"),
    ("nemo_gym.openai_utils", "NeMoGymChoice"),
    ("nemo_gym.openai_utils", "NeMoGymEasyInputMessage"),
    ("nemo_gym.openai_utils", "NeMoGymFunction"),
    ("nemo_gym.openai_utils", "NeMoGymFunctionCallOutput"),
    ("nemo_gym.openai_utils", "NeMoGymFunctionDefinition"),
    ("nemo_gym.openai_utils", "NeMoGymFunctionToolParam"),
    ("nemo_gym.openai_utils", "NeMoGymMessage"),
    ("nemo_gym.openai_utils", "NeMoGymResponse"),
    ("nemo_gym.openai_utils", "NeMoGymResponseCreateParamsNonStreaming"),
    ("nemo_gym.openai_utils", "NeMoGymResponseFunctionToolCall"),
    ("nemo_gym.openai_utils", "NeMoGymResponseFunctionToolCallForTraining"),  # head
    ("nemo_gym.openai_utils", "NeMoGymResponseInput"),
    ("nemo_gym.openai_utils", "NeMoGymResponseInputItem"),  # head
    ("nemo_gym.openai_utils", "NeMoGymResponseInputText"),
    ("nemo_gym.openai_utils", "NeMoGymResponseInputTokensDetails"),  # head
    ("nemo_gym.openai_utils", "NeMoGymResponseOutputItem"),
    ("nemo_gym.openai_utils", "NeMoGymResponseOutputMessage"),
    ("nemo_gym.openai_utils", "NeMoGymResponseOutputMessageForTraining"),
    ("nemo_gym.openai_utils", "NeMoGymResponseOutputRefusal"),
    ("nemo_gym.openai_utils", "NeMoGymResponseOutputText"),
    ("nemo_gym.openai_utils", "NeMoGymResponseOutputTokensDetails"),  # head
    ("nemo_gym.openai_utils", "NeMoGymResponseReasoningItem"),
    ("nemo_gym.openai_utils", "NeMoGymResponseUsage"),  # head
    ("nemo_gym.openai_utils", "NeMoGymSummary"),
    ("nemo_gym.openai_utils", "RATE_LIMIT_ERROR_CODES"),  # head
    ("nemo_gym.openai_utils", "REQUIRED_TOKEN_METADATA_FIELDS"),  # head
    ("nemo_gym.openai_utils", "RESPONSES_TO_TRAIN"),
    ("nemo_gym.openai_utils", "RETRY_ERROR_CODES"),  # head
    ("nemo_gym.openai_utils", "TOKEN_METADATA_FIELDS"),  # head
    ("nemo_gym.openai_utils", "TokenIDLogProbMixin"),
    ("nemo_gym.openai_utils", "accumulate_response_usage"),  # head
    ("nemo_gym.reward_profile", "add_avg_sample_std_dev"),  # head
    ("nemo_gym.reward_profile", "compute_pass_majority_metrics"),  # head
    ("nemo_gym.reward_profile", "compute_subset_metrics"),  # head
    ("nemo_gym.reward_profile", "highest_k_metrics"),  # head
    ("nemo_gym.server_utils", "SESSION_ID_KEY"),
    ("nemo_gym.server_utils", "apply_rollout_prefix"),  # head
    ("nemo_gym.server_utils", "ServerClient"),
    ("nemo_gym.server_utils", "get_first_server_config_dict"),
    ("nemo_gym.server_utils", "get_global_aiohttp_client"),  # head
    ("nemo_gym.server_utils", "get_response_json"),
    ("nemo_gym.server_utils", "get_server_url"),  # head
    ("nemo_gym.server_utils", "is_global_aiohttp_client_request_debug_enabled"),  # head
    ("nemo_gym.server_utils", "is_nemo_gym_fastapi_entrypoint"),  # head
    ("nemo_gym.server_utils", "is_nemo_gym_fastapi_worker"),
    ("nemo_gym.server_utils", "raise_for_status"),
    ("nemo_gym.server_utils", "request"),  # head
    ("nemo_gym.server_utils", "rollout_path_prefix"),  # head
]

#: Names of provided modules that Gym deliberately lacks, with the reason.
NOT_PROVIDED = {
    ("nemo_gym.base_responses_api_model", "CaptureStore"): "model-call capture (head only)",
    ("nemo_gym.base_responses_api_model", "ModelCallRecord"): "model-call capture (head only)",
    ("nemo_gym.base_responses_api_model", "_CaptureMiddleware"): "private to NeMo Gym",
    ("nemo_gym.base_responses_api_model", "aggregate_model_call_metrics"): "model-call capture",
    ("nemo_gym.base_responses_api_model", "merge_model_call_capture_into_record"): "capture",
    ("nemo_gym.base_responses_api_model", "read_model_call_records"): "model-call capture",
}


@pytest.mark.parametrize(("module", "name"), NAMES, ids=[f"{m}.{n}" for m, n in NAMES])
def test_name_is_importable_and_public(module: str, name: str) -> None:
    mod = importlib.import_module(module)
    assert hasattr(mod, name), f"{module} has no {name}"
    exec(f"from {module} import {name}", {})  # the import statement environments write
    assert name in mod.__all__, f"{name} is missing from {module}.__all__"


@pytest.mark.parametrize(("module", "name"), sorted(NOT_PROVIDED))
def test_names_left_out_are_really_absent(module: str, name: str) -> None:
    assert not hasattr(importlib.import_module(module), name), "update NOT_PROVIDED"


def test_every_compat_module_has_a_curated_all() -> None:
    for module in sorted({m for m, _ in NAMES}):
        exported = importlib.import_module(module).__all__
        assert len(exported) == len(set(exported)), module
        for name in exported:
            assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
