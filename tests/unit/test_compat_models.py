"""NeMo Gym's wire models and helpers behave as environments written for NeMo Gym expect.

Defaults of the item models, the leniency of request models toward rows NeMo Gym wrote (a
hand-written sample in ``fixtures/nemo_gym_rows.jsonl``, in NeMo Gym's shape), the chat models,
and the small helpers of ``server_utils`` and ``global_config``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage
from pydantic import TypeAdapter, ValidationError

from nemo_gym.base_resources_server import BaseRunRequest, BaseVerifyRequest
from nemo_gym.config_types import BaseServerConfig, ModelServerRef, ResourcesServerRef
from nemo_gym.core.errors import UpstreamError
from nemo_gym.global_config import (
    HEAD_SERVER_KEY_NAME,
    ROLLOUT_INDEX_KEY_NAME,
    TASK_INDEX_KEY_NAME,
    find_open_port,
    get_first_server_config_dict,
)
from nemo_gym.openai_utils import (
    NeMoGymAsyncOpenAI,
    NeMoGymChatCompletion,
    NeMoGymChatCompletionCreateParamsNonStreaming,
    NeMoGymChatCompletionMessageForTraining,
    NeMoGymEasyInputMessage,
    NeMoGymFunctionCallOutput,
    NeMoGymMessage,
    NeMoGymResponse,
    NeMoGymResponseCreateParamsNonStreaming,
    NeMoGymResponseFunctionToolCall,
    NeMoGymResponseInputTokensDetails,
    NeMoGymResponseOutputItem,
    NeMoGymResponseOutputMessage,
    NeMoGymResponseOutputMessageForTraining,
    NeMoGymResponseOutputRefusal,
    NeMoGymResponseOutputText,
    NeMoGymResponseOutputTokensDetails,
    NeMoGymResponseReasoningItem,
    NeMoGymResponseUsage,
    NeMoGymSummary,
    accumulate_response_usage,
)
from nemo_gym.server.http_client import HttpResponse
from nemo_gym.server_utils import (
    HEAD_SERVER_KEY_NAME as SERVER_UTILS_HEAD_KEY,
)
from nemo_gym.server_utils import (
    HTTPStatusError,
    get_response_json,
    raise_for_status,
)
from tests.helpers import serve_fake_openai

FIXTURE = Path(__file__).parent / "fixtures" / "nemo_gym_rows.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
WITH_RESPONSE = [r for r in ROWS if "response" in r]


# ---- item defaults ----------------------------------------------------------------------


def test_function_call_output_needs_only_call_id_and_output() -> None:
    item = NeMoGymFunctionCallOutput(call_id="call_1", output="42")
    assert item.type == "function_call_output" and item.id is None and item.status is None
    assert item.model_dump(exclude_none=True) == {
        "call_id": "call_1",
        "output": "42",
        "type": "function_call_output",
    }


def test_output_message_defaults_role_status_and_type() -> None:
    msg = NeMoGymResponseOutputMessage(
        id="msg_1", content=[NeMoGymResponseOutputText(text="hi", annotations=[])]
    )
    assert (msg.role, msg.status, msg.type) == ("assistant", "completed", "message")
    assert msg.content[0].type == "output_text"
    assert isinstance(msg, ResponseOutputMessage)  # still OpenAI's type


def test_output_message_parts_without_type_are_told_apart() -> None:
    msg = NeMoGymResponseOutputMessage.model_validate(
        {"id": "m", "content": [{"text": "a", "annotations": []}, {"refusal": "no"}]}
    )
    assert [type(p) for p in msg.content] == [
        NeMoGymResponseOutputText,
        NeMoGymResponseOutputRefusal,
    ]
    assert NeMoGymResponseOutputRefusal(refusal="no").type == "refusal"


def test_function_call_reasoning_and_messages_default_type() -> None:
    call = NeMoGymResponseFunctionToolCall(arguments="{}", call_id="c", name="f")
    assert call.type == "function_call" and isinstance(call, ResponseFunctionToolCall)
    reasoning = NeMoGymResponseReasoningItem(
        id="rs", summary=[NeMoGymSummary(text="t", type="summary_text")]
    )
    assert reasoning.type == "reasoning"
    easy = NeMoGymEasyInputMessage(role="user", content="hello")
    assert easy.model_dump(exclude_none=True) == {
        "role": "user",
        "content": "hello",
        "type": "message",
    }
    message = NeMoGymMessage(role="user", content=[{"type": "input_text", "text": "x"}])
    assert (message.status, message.type) == ("completed", "message")


def test_string_content_with_type_message_is_an_easy_input_message() -> None:
    params = NeMoGymResponseCreateParamsNonStreaming.model_validate(
        {
            "input": [
                {"role": "user", "content": "q", "type": "message"},
                {"role": "assistant", "content": "a", "type": "message"},
                {"role": "system", "content": "s", "type": "message"},
                {
                    "role": "user",
                    "type": "message",
                    "content": [{"type": "input_text", "text": "p"}],
                },
            ]
        }
    )
    assert isinstance(params.input, list)
    assert [type(i) for i in params.input] == [
        NeMoGymEasyInputMessage,
        NeMoGymEasyInputMessage,
        NeMoGymEasyInputMessage,
        NeMoGymMessage,
    ]


def test_items_dumped_without_their_defaults_are_recognised() -> None:
    # NeMo Gym's agents send items dumped with exclude_unset: defaulted ``type``s are absent.
    items = [
        NeMoGymEasyInputMessage(role="user", content="q"),
        NeMoGymResponseFunctionToolCall(arguments="{}", call_id="c1", name="f"),
        NeMoGymFunctionCallOutput(call_id="c1", output="o"),
        NeMoGymResponseReasoningItem(id="rs", summary=[]),
        NeMoGymResponseOutputMessage(
            id="m", content=[NeMoGymResponseOutputText(text="a", annotations=[])]
        ),
    ]
    params = NeMoGymResponseCreateParamsNonStreaming(input=items)
    dumped = params.model_dump(mode="json", exclude_unset=True)
    assert all("type" not in i for i in dumped["input"][1:])
    again = NeMoGymResponseCreateParamsNonStreaming.model_validate(dumped)
    assert isinstance(again.input, list)
    assert [type(i) for i in again.input] == [type(i) for i in items]


def test_openai_and_gym_model_instances_are_accepted_as_items() -> None:
    from openai.types.responses import EasyInputMessage

    params = NeMoGymResponseCreateParamsNonStreaming(
        input=[
            NeMoGymEasyInputMessage(role="user", content=[{"type": "input_text", "text": "x"}]),
            EasyInputMessage(role="user", content="hi"),  # OpenAI's own model
            ResponseOutputMessage(
                id="m",
                role="assistant",
                status="completed",
                type="message",
                content=[{"type": "output_text", "text": "a", "annotations": []}],
            ),
        ]
    )
    assert isinstance(params.input, list)
    assert [type(i) for i in params.input] == [
        NeMoGymEasyInputMessage,
        NeMoGymEasyInputMessage,
        NeMoGymResponseOutputMessage,
    ]


def test_untyped_items_convert_to_chat_and_pass_the_collection_shape_check() -> None:
    from nemo_gym.protocol.chat_conversion import input_to_messages
    from nemo_gym.protocol.shapes import shape_error

    items: list[dict[str, Any]] = [
        {"role": "user", "content": "weather?"},
        {"call_id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"call_id": "c1", "output": "snow"},
    ]
    assert shape_error({"input": items}) is None
    assert shape_error({"input": [{"output": "x"}]}) == (
        "input.0: each item must be an object with a `role` or a `type`"
    )
    messages = input_to_messages(items)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "snow"}


def test_items_with_token_data_validate_as_training_variants() -> None:
    tokens = {"prompt_token_ids": [1], "generation_token_ids": [2], "generation_log_probs": [-0.5]}
    item = TypeAdapter(NeMoGymResponseOutputItem).validate_python(
        {"id": "m", "content": [{"text": "x", "annotations": []}], "role": "assistant", **tokens}
    )
    assert isinstance(item, NeMoGymResponseOutputMessageForTraining)
    assert item.generation_log_probs == [-0.5]
    with pytest.raises(ValidationError, match="generation_log_probs"):
        TypeAdapter(NeMoGymResponseOutputItem).validate_python(
            {"id": "m", "content": [], "role": "assistant", "generation_token_ids": [2]}
        )


# ---- rows NeMo Gym wrote ----------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_run_request_accepts_nemo_gym_rows(row: dict[str, Any]) -> None:
    request = BaseRunRequest.model_validate(row)
    again = BaseRunRequest.model_validate(request.model_dump(mode="json", exclude_unset=True))
    assert again.responses_create_params.input == request.responses_create_params.input


@pytest.mark.parametrize("row", WITH_RESPONSE, ids=[f"row{i}" for i in range(len(WITH_RESPONSE))])
def test_verify_request_accepts_nemo_gym_rows(row: dict[str, Any]) -> None:
    request = BaseVerifyRequest.model_validate(row)
    assert len(request.response.output) == len(row["response"]["output"])
    # A row Gym writes back validates again (rows round-trip).
    BaseVerifyRequest.model_validate(request.model_dump(mode="json"))


def test_collection_reads_nemo_gym_rows() -> None:
    from nemo_gym.rollouts.inputs import read_rows

    assert read_rows(FIXTURE) == ROWS


def test_the_fixture_covers_the_shapes_nemo_gym_writes() -> None:
    inputs = [i for r in ROWS for i in r["responses_create_params"]["input"] if isinstance(i, dict)]
    assert any(i.get("type") == "message" and isinstance(i["content"], str) for i in inputs)
    assert any(r["responses_create_params"].get("parallel_tool_calls", 0) is None for r in ROWS)
    outputs = [o for r in WITH_RESPONSE for o in r["response"]["output"]]
    assert {o["type"] for o in outputs} == {
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
    }
    assert any("generation_token_ids" in o for o in outputs)


# ---- chat completions -------------------------------------------------------------------


def test_chat_completion_with_tool_calls_and_token_data() -> None:
    completion = NeMoGymChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "t",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                        "prompt_token_ids": [1, 2],
                        "generation_token_ids": [3],
                        "generation_log_probs": [-1.0],
                    },
                }
            ],
        }
    )
    message = completion.choices[0].message
    assert isinstance(message, NeMoGymChatCompletionMessageForTraining)
    assert message.tool_calls is not None and message.tool_calls[0].function.name == "f"


def test_chat_params_read_as_on_nemo_gym_and_keep_extras() -> None:
    body = NeMoGymChatCompletionCreateParamsNonStreaming(
        messages=[{"role": "user", "content": "hi"}], chat_template_kwargs={"x": 1}
    )
    assert body.temperature is None and body.max_tokens is None and body.tools is None
    assert body.model_dump(exclude_unset=True) == {
        "messages": [{"role": "user", "content": "hi"}],
        "chat_template_kwargs": {"x": 1},
    }


def test_usage_sums_and_unknown_counts_stay_unknown() -> None:
    def usage(i: int, o: int, cached: int | None) -> NeMoGymResponseUsage:
        return NeMoGymResponseUsage(
            input_tokens=i,
            output_tokens=o,
            total_tokens=i + o,
            input_tokens_details=NeMoGymResponseInputTokensDetails(cached_tokens=cached),
            output_tokens_details=NeMoGymResponseOutputTokensDetails(reasoning_tokens=2),
        )

    total = accumulate_response_usage(usage(10, 3, 4), usage(20, 5, 6))
    assert total is not None
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (30, 8, 38)
    assert total.input_tokens_details.cached_tokens == 10
    assert total.output_tokens_details.reasoning_tokens == 4
    unknown = accumulate_response_usage(total, usage(1, 1, None))
    assert unknown is not None and unknown.input_tokens_details.cached_tokens is None
    assert total.input_tokens_details.cached_tokens == 10  # inputs are not modified
    assert accumulate_response_usage(None, None) is None
    summed = NeMoGymResponseUsage.sum_from_list([usage(1, 2, 0), usage(3, 4, 1)])
    assert (summed.input_tokens, summed.output_tokens, summed.total_tokens) == (4, 6, 10)


# ---- server_utils, config_types, global_config ------------------------------------------


def _response(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(status=status, body=body, headers={}, url="http://tools/read_file")


async def test_response_helpers_read_like_aiohttp() -> None:
    resp = _response(200, b'{"a": [1, 2]}')
    assert await get_response_json(resp) == {"a": [1, 2]}
    assert await resp.content.read() == b'{"a": [1, 2]}'
    assert await resp.read() == b'{"a": [1, 2]}'
    await raise_for_status(resp)  # 2xx: nothing raised


async def test_raise_for_status_is_aiohttps_error_with_the_body() -> None:
    with pytest.raises(aiohttp.ClientResponseError) as info:
        await raise_for_status(_response(404, b'{"detail":"no such file"}'))
    error = info.value
    assert isinstance(error, HTTPStatusError) and isinstance(error, UpstreamError)
    assert error.status == 404
    assert error.response_content == b'{"detail":"no such file"}'
    assert "no such file" in str(error) and "http://tools/read_file" in str(error)


def test_server_refs_accept_only_their_server_type() -> None:
    ref = ModelServerRef.model_validate({"type": "responses_api_models", "name": "policy"})
    assert ref.name == "policy"
    with pytest.raises(ValidationError, match="responses_api_models"):
        ModelServerRef.model_validate({"type": "resources_servers", "name": "tools"})
    with pytest.raises(ValidationError):
        ResourcesServerRef.model_validate({"type": "responses_api_agents", "name": "agent"})


def test_head_server_config_for_trainers() -> None:
    head = BaseServerConfig(host="10.0.0.7", port=11000)
    assert (head.host, head.port) == ("10.0.0.7", 11000)
    assert HEAD_SERVER_KEY_NAME == SERVER_UTILS_HEAD_KEY == "head_server"
    assert (TASK_INDEX_KEY_NAME, ROLLOUT_INDEX_KEY_NAME) == ("_ng_task_index", "_ng_rollout_index")


def test_first_server_config_dict_reads_by_key_and_attribute() -> None:
    config = {
        "tools": {"resources_servers": {"weather": {"host": "127.0.0.1", "port": 8123}}},
        "policy_api_key": "secret",
    }
    settings = get_first_server_config_dict(config, "tools")
    assert settings.port == 8123 and settings["host"] == "127.0.0.1"
    with pytest.raises(KeyError, match="policy_api_key"):
        get_first_server_config_dict(config, "policy_api_key")


def test_find_open_port_skips_disallowed_ports() -> None:
    first = find_open_port()
    port = find_open_port(disallowed_ports=[first])
    assert port != first
    with socket.socket() as s:
        s.bind(("", port))  # really free


def test_nemo_gym_root_constants_are_the_project_root() -> None:
    from nemo_gym import CACHE_DIR, PARENT_DIR, RESULTS_DIR
    from nemo_gym.core.paths import project_root

    assert PARENT_DIR == project_root()
    assert (CACHE_DIR, RESULTS_DIR) == (PARENT_DIR / "cache", PARENT_DIR / "results")


# ---- NeMoGymAsyncOpenAI -----------------------------------------------------------------


async def test_async_openai_client_retries_rate_limits_then_answers() -> None:
    async with serve_fake_openai(fail_first=2, fail_status=429) as (url, fake):
        client = NeMoGymAsyncOpenAI(base_url=url, api_key="sk-judge")
        answer = await client.create_chat_completion(
            model="m", messages=[{"role": "user", "content": "weather in Paris?"}]
        )
        await client.close()
    assert fake.requests == 3 and fake.auth[-1] == "Bearer sk-judge"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert "sk-judge" not in repr(client)


async def test_async_openai_client_raises_other_statuses_with_the_body() -> None:
    async with serve_fake_openai() as (url, _):
        client = NeMoGymAsyncOpenAI(base_url=url, api_key="k")
        with pytest.raises(HTTPStatusError) as info:
            await client.create_response(input="FAKE_HTTP_404", model="m")
        await client.close()
    assert info.value.status == 404


def test_response_output_parses_a_nemo_gym_response() -> None:
    response = NeMoGymResponse.model_validate(WITH_RESPONSE[1]["response"])
    assert isinstance(response.usage, NeMoGymResponseUsage)  # no cache_write_tokens: still typed
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert [o.type for o in response.output] == ["function_call", "function_call_output", "message"]
    assert isinstance(response.output[1], NeMoGymFunctionCallOutput)


def test_body_is_fastapis() -> None:
    import fastapi

    from nemo_gym.base_responses_api_agent import Body as AgentBody
    from nemo_gym.base_responses_api_model import Body as ModelBody

    assert AgentBody is fastapi.Body and ModelBody is fastapi.Body


async def test_request_calls_any_url_and_reads_like_aiohttp() -> None:
    from nemo_gym.server_utils import get_global_aiohttp_client, request

    async with serve_fake_openai() as (url, fake):
        resp = await request(
            "POST",
            f"{url}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sk-req"},
            timeout=aiohttp.ClientTimeout(total=30),
        )
        assert resp.status == 200 and fake.auth[-1] == "Bearer sk-req"
        assert (await get_response_json(resp))["object"] == "chat.completion"
        with pytest.raises(TypeError, match="allow_redirects"):
            await request("GET", f"{url}/models", allow_redirects=False)
        session = get_global_aiohttp_client()
        assert get_global_aiohttp_client() is session  # one pool per event loop
        async with session.post(f"{url}/chat/completions", json={"messages": []}) as raw:
            assert raw.status == 200
        await session.close()


def test_global_config_from_a_parser_config_as_trainers_build_it() -> None:
    from omegaconf import OmegaConf

    from nemo_gym.config.parser_config import GlobalConfigDictParserConfig
    from nemo_gym.global_config import DISALLOWED_PORTS_KEY_NAME, get_global_config_dict

    parser = GlobalConfigDictParserConfig(
        initial_global_config_dict=OmegaConf.create({"policy_model_name": "m", "x": {"y": 3}}),
        skip_load_from_cli=True,
        skip_load_from_dotenv=True,
    )
    for config in (
        get_global_config_dict(global_config_dict_parser_config=parser),
        get_global_config_dict(parser),  # NeMo Gym's positional form
    ):
        assert config.x.y == 3 and config.policy_model_name == "m"
        assert config[DISALLOWED_PORTS_KEY_NAME] == []
