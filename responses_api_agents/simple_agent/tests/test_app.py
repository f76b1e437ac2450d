"""simple_agent: one rollout of the weather environment through /run, every server real and in
process, the remote API replaced by the fake OpenAI endpoint (the loop in depth:
tests/unit/test_agent_loop.py)."""

from __future__ import annotations

import httpx

from nemo_gym.authoring import ServerClient
from resources_servers.example_single_tool_call.app import (
    ExampleSingleToolCallConfig,
    ExampleSingleToolCallServer,
)
from responses_api_agents.simple_agent.app import SimpleAgent, SimpleAgentConfig
from responses_api_models.openai_model.app import OpenAIModelConfig, OpenAIModelServer
from tests.helpers import WEATHER_TOOL, instance_entry, serve_app, serve_fake_openai


async def test_run_calls_the_tool_then_answers_and_is_verified() -> None:
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
        weather = ExampleSingleToolCallServer(
            config=ExampleSingleToolCallConfig(name="weather"), server_client=ServerClient({})
        )
        async with (
            serve_app(model.setup_webserver()) as model_url,
            serve_app(weather.setup_webserver()) as weather_url,
        ):
            agent = SimpleAgent(
                config=SimpleAgentConfig(
                    name="agent",
                    resources_server={"type": "resources_servers", "name": "weather"},
                    model_server={"type": "responses_api_models", "name": "policy_model"},
                ),
                server_client=ServerClient(
                    {
                        "policy_model": instance_entry(
                            "responses_api_models", "openai_model", model_url
                        ),
                        "weather": instance_entry("resources_servers", "weather", weather_url),
                    }
                ),
            )
            transport = httpx.ASGITransport(app=agent.setup_webserver())
            async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
                row = {
                    "responses_create_params": {
                        "input": [{"role": "user", "content": "weather in Paris?"}],
                        "tools": [WEATHER_TOOL],
                    }
                }
                resp = await client.post("/run", json=row)
            await agent.server_client.close()
            await model.server_client.close()
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["_ng_status"] == "completed" and out["_ng_num_steps"] == 2
    kinds = [item["type"] for item in out["response"]["output"]]
    assert kinds == ["function_call", "function_call_output", "message"]
    assert out["reward"] == 1.0  # the weather environment rewards every finished rollout
