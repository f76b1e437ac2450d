"""openai_model: the base URL, the Bearer key and the forced model, against the fake endpoint."""

from __future__ import annotations

import httpx

from nemo_gym.head.client import ServerClient
from nemo_gym.openai_utils import NeMoGymResponse
from responses_api_models.openai_model.app import OpenAIModelConfig, OpenAIModelServer
from tests.helpers import serve_fake_openai


async def test_a_429_is_retried_and_the_call_carries_the_key_and_the_model() -> None:
    async with serve_fake_openai(fail_first=1, fail_status=429) as (url, fake):
        server = OpenAIModelServer(
            config=OpenAIModelConfig(
                name="policy_model",
                openai_base_url=url,
                openai_api_key="sk-test",
                openai_model="gpt-forced",
                max_attempts=3,
            ),
            server_client=ServerClient({}),
        )
        transport = httpx.ASGITransport(app=server.setup_webserver())
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            resp = await client.post("/v1/responses", json={"input": "hello", "model": "other"})
        await server.server_client.close()
    assert resp.status_code == 200, resp.text
    body = resp.json()
    NeMoGymResponse.model_validate(body)
    assert body["model"] == "gpt-forced"  # the fake echoes the model it was sent
    assert fake.requests == 2 and fake.auth == ["Bearer sk-test", "Bearer sk-test"]
