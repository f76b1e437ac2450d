"""vllm_model: against the real local model's Chat Completions endpoint, and against recorded
vLLM response bodies for the token fields, reasoning and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from nemo_gym.authoring import ServerClient
from nemo_gym.openai_utils import NeMoGymResponse
from responses_api_models.local_model.app import LocalModelConfig, LocalModelServer
from responses_api_models.vllm_model.app import VLLMModelConfig, VLLMModelServer
from tests.helpers import WEATHER_TOOL as WEATHER
from tests.helpers import history_after, serve_app

DATA = Path(__file__).parent / "data"


def vllm_server(base_url: str | list[str], **settings: Any) -> VLLMModelServer:
    config = VLLMModelConfig(name="policy_model", base_url=base_url, model="m", **settings)
    return VLLMModelServer(config=config, server_client=ServerClient({}))


def client_for(server: VLLMModelServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.setup_webserver()),
        base_url="http://vllm",
        timeout=120,
    )


async def post(client: httpx.AsyncClient, session: str = "s1", **params: Any) -> dict[str, Any]:
    resp = await client.post("/v1/responses", json=params, headers={"X-Gym-Session": session})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    NeMoGymResponse.model_validate(body)
    return body


# -- against the real local model -----------------------------------------------------------------
@pytest.fixture(scope="module")
def local_app() -> Any:
    server = LocalModelServer(
        config=LocalModelConfig(name="local", n_instances=1, n_threads=2),
        server_client=ServerClient({}),
    )
    return server.setup_webserver()


@pytest.fixture
async def local_url(local_app: Any) -> AsyncIterator[str]:
    async with serve_app(local_app) as url:
        yield url + "/v1"


async def test_text_and_tool_calls_through_a_real_chat_server(local_url: str) -> None:
    server = vllm_server(local_url)
    async with client_for(server) as client:
        text = await post(client, input="Say hello.", temperature=0, max_output_tokens=12)
        assert text["output"][-1]["type"] == "message" and text["model"] == "m"
        call = await post(
            client,
            input="weather in Rome?",
            tools=[WEATHER],
            tool_choice="required",
            temperature=0,
            max_output_tokens=60,
        )
    calls = [i for i in call["output"] if i["type"] == "function_call"]
    assert calls and calls[0]["name"] == "get_weather"
    assert set(json.loads(calls[0]["arguments"])) == {"city"}
    await server.server_client.close()


async def test_training_tokens_round_trip_without_drift(local_url: str) -> None:
    server = vllm_server(local_url, return_token_id_information=True)
    async with client_for(server) as client:
        first = await post(
            client,
            input="weather in Rome?",
            tools=[WEATHER],
            tool_choice="required",
            temperature=0.8,
            seed=2,
            max_output_tokens=60,
        )
        last = first["output"][-1]
        assert len(last["generation_token_ids"]) == len(last["generation_log_probs"]) > 0
        assert last["prompt_token_ids"] and "token_drift" not in first
        for item in first["output"][:-1]:
            assert "generation_token_ids" not in item
        history = history_after("weather in Rome?", first, "warm")
        second = await post(
            client, input=history, tools=[WEATHER], temperature=0, max_output_tokens=16
        )
    exact = last["prompt_token_ids"] + last["generation_token_ids"]
    assert second["output"][-1]["prompt_token_ids"][: len(exact)] == exact
    assert "token_drift" not in second
    await server.server_client.close()


# -- against recorded vLLM bodies ------------------------------------------------------------------
Handler = Callable[[dict[str, Any]], tuple[int, Any]]


async def recorded_upstream(handler: Handler, seen: list[dict[str, Any]]) -> web.AppRunner:
    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        status, payload = handler(body)
        return web.json_response(payload, status=status)

    async def tokenize(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({"tokenize": body})
        return web.json_response({"tokens": [1, 2, 3], "count": 3})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/tokenize", tokenize)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def url_of(runner: web.AppRunner) -> str:
    port = runner.addresses[0][1]
    return f"http://127.0.0.1:{port}/v1"


def recorded(name: str) -> Any:
    return json.loads((DATA / name).read_text())


async def test_recorded_tool_call_with_reasoning_and_token_ids() -> None:
    seen: list[dict[str, Any]] = []
    runner = await recorded_upstream(
        lambda b: (200, recorded("vllm_tool_call_with_reasoning.json")), seen
    )
    server = vllm_server(url_of(runner), return_token_id_information=True)
    async with client_for(server) as client:
        body = await post(
            client,
            input=[
                {"role": "developer", "content": "Be helpful."},
                {"role": "user", "content": "weather in Paris?"},
            ],
            tools=[WEATHER],
            max_output_tokens=64,
        )
    await runner.cleanup()
    await server.server_client.close()
    assert [i["type"] for i in body["output"]] == ["reasoning", "function_call"]
    assert body["output"][0]["summary"][0]["text"].startswith("The user wants the weather")
    call = body["output"][1]
    assert (call["name"], call["call_id"]) == ("get_weather", "chatcmpl-tool-5a0e")
    assert call["generation_token_ids"] == [151657, 4913, 606, 151658, 151645]
    assert call["generation_log_probs"][1] == -0.31
    assert call["prompt_token_ids"] == [151644, 872, 198, 9533, 30, 151645]
    request = seen[0]
    assert request["logprobs"] is True and request["return_tokens_as_token_ids"] is True
    assert request["max_tokens"] == 64 and request["model"] == "m"
    assert request["tools"][0]["function"]["name"] == "get_weather"


async def test_tokenize_fallback_and_drift_is_flagged() -> None:
    seen: list[dict[str, Any]] = []
    body = recorded("vllm_tool_call_with_reasoning.json")
    del body["prompt_token_ids"]  # an older vLLM: prompt ids come from /tokenize ([1, 2, 3])
    runner = await recorded_upstream(lambda b: (200, body), seen)
    server = vllm_server(url_of(runner), return_token_id_information=True)
    previous = {
        "type": "function_call",
        "id": "fc",
        "call_id": "c1",
        "name": "get_weather",
        "arguments": "{}",
        "prompt_token_ids": [1, 2],
        "generation_token_ids": [9, 9],
        "generation_log_probs": [-0.1, -0.2],
    }
    async with client_for(server) as client:
        response = await post(
            client,
            input=[
                {"role": "user", "content": "hi"},
                previous,
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            ],
            tools=[WEATHER],
        )
    await runner.cleanup()
    await server.server_client.close()
    assert response["output"][-1]["prompt_token_ids"] == [1, 2, 3]
    assert response["token_drift"] == {
        "position": 2,
        "expected": 9,
        "got": 3,
        "detail": "the prompt re-tokenises an earlier turn differently",
    }
    sent = seen[0]["messages"][1]
    assert sent["generation_token_ids"] == [9, 9] and sent["tool_calls"][0]["id"] == "c1"
    assert "tokenize" in seen[1] and seen[1]["tokenize"]["messages"][0]["content"] == "hi"


async def test_context_length_error_becomes_incomplete() -> None:
    runner = await recorded_upstream(
        lambda b: (400, recorded("vllm_context_length_error.json")), []
    )
    server = vllm_server(url_of(runner))
    async with client_for(server) as client:
        body = await post(client, input="very long prompt")
    await runner.cleanup()
    await server.server_client.close()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"]["reason"] == "max_output_tokens"
    assert "maximum context length is 4096" in body["incomplete_details"]["detail"]


async def test_reasoning_parser_moves_think_into_reasoning_content() -> None:
    seen: list[dict[str, Any]] = []
    answer = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "<think>short</think>Done."},
            }
        ]
    }
    runner = await recorded_upstream(lambda b: (200, answer), seen)
    server = vllm_server(
        url_of(runner), uses_reasoning_parser=True, replace_developer_role_with_system=True
    )
    history = [
        {"role": "developer", "content": "d"},
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": "earlier"}]},
        {
            "type": "message",
            "id": "m",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "A.", "annotations": []}],
        },
        {"role": "user", "content": "q2"},
    ]
    async with client_for(server) as client:
        body = await post(client, input=history)
    await runner.cleanup()
    await server.server_client.close()
    messages = seen[0]["messages"]
    assert messages[0]["role"] == "system"
    assert messages[2] == {"role": "assistant", "content": "A.", "reasoning_content": "earlier"}
    assert [i["type"] for i in body["output"]] == ["reasoning", "message"]
    assert body["output"][1]["content"][0]["text"] == "Done."


async def test_sessions_stick_to_one_upstream_and_spread_across_them() -> None:
    hits: list[list[dict[str, Any]]] = [[], []]
    answer = {
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
        ]
    }
    runners = [await recorded_upstream(lambda b: (200, answer), hits[i]) for i in range(2)]
    server = vllm_server([url_of(r) for r in runners])
    async with client_for(server) as client:
        for turn in range(3):
            for session in ("a", "b", "c", "d"):
                await post(client, session=session, input=f"{session} turn {turn}")
    for runner in runners:
        await runner.cleanup()
    await server.server_client.close()
    by_upstream = [{m["messages"][0]["content"][0] for m in h} for h in hits]
    assert by_upstream[0].isdisjoint(by_upstream[1])
    assert by_upstream[0] | by_upstream[1] == {"a", "b", "c", "d"}
    assert len(hits[0]) == len(hits[1]) == 6


async def test_an_upstream_error_is_answered_with_the_key_redacted() -> None:
    key = "vllm-secret-0123456789"
    echo = {"error": {"message": f"invalid key {key}; header was Bearer {key}"}}
    statuses = iter([500, 401])
    runner = await recorded_upstream(lambda b: (next(statuses), echo), [])
    url = url_of(runner)
    server = vllm_server(url, api_key=key, max_attempts=1)
    async with client_for(server) as client:
        gateway = await client.post("/v1/responses", json={"input": "hi"})
        unauthorised = await client.post("/v1/chat/completions", json={"messages": []})
    await runner.cleanup()
    await server.server_client.close()
    # a server error upstream is a bad gateway; a 4xx is the caller's and keeps its status
    assert (gateway.status_code, unauthorised.status_code) == (502, 401)
    for resp in (gateway, unauthorised):
        detail = resp.json()["detail"]
        assert key not in resp.text and "***REDACTED***" in detail
        assert detail.startswith(f"upstream {url}/chat/completions answered HTTP ")


async def test_sticky_sessions_beyond_max_sessions_are_forgotten() -> None:
    answer = {
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
        ]
    }
    runners = [await recorded_upstream(lambda b: (200, answer), []) for _ in range(2)]
    server = vllm_server([url_of(r) for r in runners], max_sessions=2)
    async with client_for(server) as client:
        for session in ("a", "b", "c"):
            await post(client, session=session, input="hi")
    for runner in runners:
        await runner.cleanup()
    await server.server_client.close()
    # a went to upstream 0, b to 1, c to 0 (a tie: the lower index); c evicted a
    assert server._assigned == [1, 1]
    assert server._sessions.removed == {"expired": 0, "bound": 1}
    assert "a" not in server._sessions and server.upstream_for("b") == 1
