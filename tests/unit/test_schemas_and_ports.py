"""Wire models (training fields survive, strict params) and port binding."""

from __future__ import annotations

import socket

import pytest
from openai.types.responses import EasyInputMessage, ResponseFunctionToolCall
from pydantic import ValidationError

from nemo_gym.core.errors import ConfigError
from nemo_gym.openai_utils import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming
from nemo_gym.protocol.responses import NeMoGymResponseFunctionToolCallForTraining
from nemo_gym.supervisor.ports import bind_listener

TOKENS = {"prompt_token_ids": [1, 2], "generation_token_ids": [3], "generation_log_probs": [-0.1]}
CALL = {
    "type": "function_call",
    "call_id": "c1",
    "name": "f",
    "arguments": "{}",
    "id": "fc1",
    "status": "completed",
}


def test_input_items_are_typed_and_training_fields_survive() -> None:
    params = NeMoGymResponseCreateParamsNonStreaming.model_validate(
        {
            "input": [
                {"role": "user", "content": "hi"},
                {**CALL, **TOKENS},
                {"type": "function_call_output", "call_id": "c1", "output": "{}"},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "m",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "ok", "annotations": []}],
                },
            ]
        }
    )
    assert isinstance(params.input[0], EasyInputMessage)
    assert isinstance(params.input[1], ResponseFunctionToolCall)
    dumped = params.model_dump(mode="json", exclude_unset=True)
    assert dumped["input"][1]["generation_token_ids"] == [3]
    assert dumped["input"][3]["content"][0]["text"] == "ok"


def test_unknown_create_param_is_rejected_by_name() -> None:
    with pytest.raises(ValidationError, match="max_output_token"):
        NeMoGymResponseCreateParamsNonStreaming.model_validate(
            {"input": "x", "max_output_token": 5}
        )


def test_response_keeps_tool_outputs_and_lenient_usage() -> None:
    response = NeMoGymResponse.model_validate(
        {
            "id": "r",
            "object": "response",
            "created_at": 0,
            "model": "m",
            "tools": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "output": [
                {**CALL, **TOKENS},
                {"type": "function_call_output", "call_id": "c1", "output": "42"},
            ],
            "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        }
    )
    dumped = response.model_dump(mode="json", exclude_unset=True)
    assert dumped["output"][1] == {"type": "function_call_output", "call_id": "c1", "output": "42"}
    assert dumped["output"][0]["prompt_token_ids"] == [1, 2]
    training = NeMoGymResponseFunctionToolCallForTraining.model_validate({**CALL, **TOKENS})
    assert training.generation_log_probs == [-0.1]
    with pytest.raises(ValidationError):
        NeMoGymResponseFunctionToolCallForTraining.model_validate(CALL)


def test_port_zero_binds_a_free_port_and_a_taken_port_is_named() -> None:
    sock = bind_listener("127.0.0.1", 0, what="x")
    port = sock.getsockname()[1]
    assert port > 0
    try:
        with pytest.raises(ConfigError) as info:
            bind_listener("127.0.0.1", port, what="server 'agent'", key="agent.port")
        assert f"port {port} on 127.0.0.1 is already in use, so server 'agent'" in str(info.value)
        assert "+agent.port=<port>" in str(info.value)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # already listening: connections queue before any server process starts
    finally:
        sock.close()


def test_quick_shape_check_knows_every_create_param() -> None:
    from nemo_gym.protocol.shapes import CREATE_PARAMS_FIELDS

    assert set(NeMoGymResponseCreateParamsNonStreaming.model_fields) == CREATE_PARAMS_FIELDS


def test_response_shape_check_names_what_the_loop_cannot_use() -> None:
    from nemo_gym.protocol.shapes import response_shape_error

    ok = {"output": [CALL, {"type": "message", "content": []}]}
    assert response_shape_error(ok) is None
    assert response_shape_error([]) == "the response is not a JSON object"
    assert response_shape_error({"id": "x"}) == "`output` is missing or not a list"
    assert (
        response_shape_error({"output": [{"no": "type"}]}) == "output.0: not an item with a `type`"
    )
    bad_call = {**CALL, "arguments": {"city": "x"}}
    assert response_shape_error({"output": [bad_call]}) == (
        "output.0.arguments: a function call needs a string `arguments`"
    )
