"""example_single_tool_call: the tool and the verifier, in-process."""

from __future__ import annotations

import httpx

from nemo_gym.authoring import ServerClient
from resources_servers.example_single_tool_call.app import (
    ExampleSingleToolCallConfig,
    ExampleSingleToolCallServer,
)
from tests.helpers import model_response


def _client() -> httpx.AsyncClient:
    server = ExampleSingleToolCallServer(
        config=ExampleSingleToolCallConfig(name="weather"), server_client=ServerClient({})
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.setup_webserver()), base_url="http://weather"
    )


async def test_get_weather_answers_for_the_city() -> None:
    async with _client() as client:
        resp = await client.post("/get_weather", json={"city": "Oslo"})
        bad = await client.post("/get_weather", json={"town": "Oslo"})
    assert resp.json() == {"city": "Oslo", "weather_description": "The weather in Oslo is cold."}
    assert bad.status_code == 422 and "city" in bad.json()["error"]["message"]


async def test_verify_gives_one_and_echoes_the_row() -> None:
    response = model_response()
    async with _client() as client:
        resp = await client.post(
            "/verify", json={"responses_create_params": {"input": "weather?"}, "response": response}
        )
    body = resp.json()
    assert resp.status_code == 200 and body["reward"] == 1.0
    assert body["responses_create_params"]["input"] == "weather?"
