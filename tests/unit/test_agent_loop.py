"""The simple_agent loop and failure recording, in-process against real HTTP servers.

A fake OpenAI endpoint (scripted by markers in the user text) stands in for the remote API; the
model server, the resources server and the agent are the real implementations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from nemo_gym.base_resources_server import BaseVerifyRequest, BaseVerifyResponse
from nemo_gym.head.client import ServerClient
from nemo_gym.rollouts.row import RolloutRow
from resources_servers.example_single_tool_call.app import (
    ExampleSingleToolCallConfig,
    ExampleSingleToolCallServer,
)
from responses_api_agents.simple_agent.app import SimpleAgent, SimpleAgentConfig
from responses_api_models.openai_model.app import OpenAIModelConfig, OpenAIModelServer
from tests.helpers import InProcess, serve_fake_openai

RunRow = Callable[..., Awaitable[dict[str, Any]]]


class ExplodeRequest(BaseModel):
    city: str = ""


class TestResourcesServer(ExampleSingleToolCallServer):
    """The weather server plus a tool that raises and a verify that can raise."""

    __test__ = False

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.post("/explode")(self.explode)
        return app

    async def explode(self, body: ExplodeRequest) -> dict[str, Any]:
        raise RuntimeError("the tool blew up")

    async def verify(self, body: BaseVerifyRequest) -> BaseVerifyResponse:
        text = body.responses_create_params.input[-1].content  # type: ignore[union-attr,index]
        if "VERIFY_RAISES" in str(text):
            raise ValueError("verifier crashed")
        return BaseVerifyResponse(**body.model_dump(), reward=0.5)


@pytest.fixture
async def run_row() -> AsyncIterator[RunRow]:
    async with serve_fake_openai() as (base_url, _fake):
        model = OpenAIModelServer(
            config=OpenAIModelConfig(
                name="policy_model",
                openai_base_url=base_url,
                openai_api_key="sk-x",
                openai_model="fake",
            ),
            server_client=ServerClient({}),
        )
        resources = TestResourcesServer(
            config=ExampleSingleToolCallConfig(name="weather"), server_client=ServerClient({})
        )
        setup = InProcess()  # the model's upstream is on a socket; Gym's servers in process
        setup.add("policy_model", "responses_api_models", model.setup_webserver())
        setup.add("weather", "resources_servers", resources.setup_webserver())
        try:
            agent = SimpleAgent(
                config=SimpleAgentConfig(
                    name="agent",
                    max_steps=3,
                    resources_server={"type": "resources_servers", "name": "weather"},
                    model_server={"type": "responses_api_models", "name": "policy_model"},
                ),
                server_client=setup.client,
            )
            transport = httpx.ASGITransport(app=agent.setup_webserver())
            async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:

                async def run(
                    text: str,
                    tools: tuple[str, ...] = ("get_weather",),
                    raw: dict[str, Any] | None = None,
                    **extra: Any,
                ) -> dict[str, Any]:
                    row = raw or {
                        "responses_create_params": {
                            "input": [{"role": "user", "content": text}],
                            "tools": [
                                {
                                    "type": "function",
                                    "name": t,
                                    "parameters": {
                                        "type": "object",
                                        "properties": {"city": {"type": "string"}},
                                    },
                                }
                                for t in tools
                            ],
                        },
                        **extra,
                    }
                    row = {"_ng_task_index": 0, "_ng_repeat_index": 0, **row}  # as collected
                    resp = await client.post("/run", json=row)
                    assert resp.status_code == 200, resp.text
                    out: dict[str, Any] = orjson.loads(resp.content)
                    RolloutRow.model_validate(out)  # every row the agent writes is a valid row
                    return out

                yield run
        finally:
            await setup.client.close()
            await model.server_client.close()


async def test_completed_rollout_calls_tool_then_answers(run_row: RunRow) -> None:
    row = await run_row("weather in Paris?", task_id="t1")
    assert row["_ng_status"] == "completed" and row["_ng_failure"] is None
    assert row["reward"] == 0.5 and row["task_id"] == "t1"  # input fields are kept
    kinds = [item["type"] for item in row["response"]["output"]]
    assert kinds == ["function_call", "function_call_output", "message"]
    tool_output = orjson.loads(row["response"]["output"][1]["output"])
    assert tool_output == {"city": "Paris", "weather_description": "The weather in Paris is cold."}
    assert row["_ng_num_steps"] == 2


async def test_max_steps_ends_as_truncated_and_is_still_verified(run_row: RunRow) -> None:
    row = await run_row("FAKE_LOOP forever")
    assert row["_ng_status"] == "truncated"
    assert row["_ng_failure"]["kind"] == "max_steps"
    assert row["_ng_num_steps"] == 3 and row["reward"] == 0.5
    calls = [i for i in row["response"]["output"] if i["type"] == "function_call"]
    assert len(calls) == 3


async def test_truncated_model_response_is_marked(run_row: RunRow) -> None:
    row = await run_row("FAKE_TRUNCATE please")
    assert row["_ng_status"] == "truncated" and row["_ng_failure"]["kind"] == "truncated"


async def test_bad_arguments_go_back_to_the_model_as_an_error(run_row: RunRow) -> None:
    row = await run_row("FAKE_BAD_ARGS then answer")
    output = row["response"]["output"]
    assert output[1]["type"] == "function_call_output"
    assert "not valid JSON" in orjson.loads(output[1]["output"])["error"]["message"]
    assert row["_ng_status"] == "completed"


async def test_unknown_tool_is_refused_not_routed(run_row: RunRow) -> None:
    row = await run_row("FAKE_UNKNOWN_TOOL")
    error = orjson.loads(row["response"]["output"][1]["output"])["error"]["message"]
    assert "unknown tool 'no_such_tool'" in error


async def test_tool_exception_becomes_error_body_for_the_model(run_row: RunRow) -> None:
    row = await run_row("use the tool", tools=("explode",))
    body = orjson.loads(row["response"]["output"][1]["output"])
    assert body["error"] == {
        "type": "RuntimeError",
        "message": "the tool blew up",
        "server": "weather",
    }
    assert row["_ng_status"] == "completed"


async def test_model_error_fails_the_row_with_no_reward(run_row: RunRow) -> None:
    row = await run_row("FAKE_HTTP_400 bad request")
    assert row["_ng_status"] == "failed" and row["reward"] is None
    assert row["_ng_failure"]["kind"] == "model_error"
    assert "HTTP 400" in row["_ng_failure"]["message"]


async def test_verifier_exception_fails_the_row(run_row: RunRow) -> None:
    row = await run_row("VERIFY_RAISES")
    assert row["_ng_status"] == "failed" and row["reward"] is None
    assert row["_ng_failure"]["kind"] == "verifier_error"
    assert "verifier crashed" in row["_ng_failure"]["message"]
    assert row["response"]["output"], "the partial trajectory is kept for inspection"


async def test_invalid_create_params_fail_the_row(run_row: RunRow) -> None:
    row = await run_row("", raw={"responses_create_params": {"input": "hi", "temprature": 1}})
    assert row["_ng_status"] == "failed" and row["_ng_failure"]["kind"] == "invalid_input"
    assert "temprature" in row["_ng_failure"]["message"]


def test_error_answers_read_as_one_line() -> None:
    from responses_api_agents.simple_agent.app import _error_text

    gym = b'{"error": {"type": "ToolError", "message": "no such city"}}'
    assert _error_text(500, gym) == "HTTP 500: ToolError: no such city"
    assert _error_text(404, b'{"detail": "Not Found"}') == "HTTP 404: Not Found"
    assert _error_text(422, b'{"detail": [{"loc": ["body"]}]}') == 'HTTP 422: [{"loc":["body"]}]'
    assert _error_text(502, b"<html>bad gateway") == "HTTP 502: <html>bad gateway"
