"""Responses <-> Chat Completions conversion, every item type, both ways."""

from __future__ import annotations

import pytest

from nemo_gym.openai_utils import NeMoGymResponse
from nemo_gym.protocol.chat_conversion import (
    ConversionError,
    chat_to_response,
    chat_to_response_output,
    input_to_messages,
    responses_to_chat_request,
)

TOKENS = {
    "prompt_token_ids": [1, 2],
    "generation_token_ids": [7, 8],
    "generation_log_probs": [-0.5, -0.25],
}
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "d",
    "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_multi_turn_history_becomes_chat_messages() -> None:
    params = {
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "Use tools."},
            {"role": "user", "content": [{"type": "input_text", "text": "weather in SF?"}]},
            {
                "type": "reasoning",
                "id": "rs1",
                "summary": [{"type": "summary_text", "text": "need the tool"}],
            },
            {
                "type": "function_call",
                "id": "fc1",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city": "SF"}',
                **TOKENS,
            },
            {"type": "function_call_output", "call_id": "c1", "output": '{"t": "cold"}'},
            {
                "type": "message",
                "id": "m1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "It is cold.", "annotations": []}],
            },
            {"role": "user", "content": "thanks"},
        ],
        "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "max_output_tokens": 64,
        "temperature": 0.0,
        "seed": 3,
    }
    chat = responses_to_chat_request(params)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": "weather in SF?"},
        {
            "role": "assistant",
            "content": "<think>need the tool</think>",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "SF"}'},
                }
            ],
            **TOKENS,
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"t": "cold"}'},
        {"role": "assistant", "content": "It is cold."},
        {"role": "user", "content": "thanks"},
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "d",
                "parameters": TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (chat["max_tokens"], chat["temperature"], chat["seed"]) == (64, 0.0, 3)


def test_string_input_and_unsupported_items() -> None:
    assert input_to_messages("hi") == [{"role": "user", "content": "hi"}]
    with pytest.raises(ConversionError, match="input.0.content.0: content of type 'input_image'"):
        input_to_messages(
            [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]
        )
    with pytest.raises(ConversionError, match="input.0.type: items of type 'web_search_call'"):
        input_to_messages([{"type": "web_search_call", "id": "w"}])


def test_assistant_message_becomes_reasoning_text_and_calls_in_order() -> None:
    items = chat_to_response_output(
        {
            "role": "assistant",
            "content": "<think>plan</think>Calling it.",
            "tool_calls": [
                {
                    "id": "c9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        tokens=TOKENS,
    )
    assert [i["type"] for i in items] == ["reasoning", "message", "function_call"]
    assert items[0]["summary"] == [{"type": "summary_text", "text": "plan"}]
    assert items[1]["content"][0]["text"] == "Calling it."
    assert items[2]["call_id"] == "c9" and items[2]["name"] == "get_weather"
    assert items[2]["generation_token_ids"] == [7, 8]
    assert "generation_token_ids" not in items[0] and "generation_token_ids" not in items[1]


def test_reasoning_field_and_unterminated_think() -> None:
    items = chat_to_response_output(
        {"role": "assistant", "content": "ok", "reasoning_content": "because"}
    )
    assert items[0]["summary"][0]["text"] == "because" and items[1]["content"][0]["text"] == "ok"
    cut = chat_to_response_output({"role": "assistant", "content": "<think>still thinking"})
    assert [i["type"] for i in cut] == ["reasoning"]
    empty = chat_to_response_output({"role": "assistant", "content": None})
    assert empty[0]["type"] == "message" and empty[0]["content"][0]["text"] == ""


def test_round_trip_response_validates_and_converts_back() -> None:
    params = {"input": "weather?", "tools": [TOOL], "max_output_tokens": 5}
    completion = {
        "created": 1,
        "choices": [
            {"finish_reason": "length", "message": {"role": "assistant", "content": "The weath"}}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }
    response = chat_to_response(completion, params, "m", TOKENS)
    NeMoGymResponse.model_validate(response)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"] == {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}
    again = input_to_messages(
        ["x"] and [{"role": "user", "content": "weather?"}, *response["output"]]
    )
    assert again[-1] == {"role": "assistant", "content": "The weath", **TOKENS}
