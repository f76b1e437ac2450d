"""openai_model: the base URL, the Bearer key and the forced model, against the fake endpoint."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from nemo_gym.authoring import ServerClient
from nemo_gym.openai_utils import NeMoGymResponse
from responses_api_models.openai_model.app import OpenAIModelConfig, OpenAIModelServer
from tests.helpers import serve_app, serve_fake_openai


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


async def test_an_upstream_error_that_echoes_the_key_reaches_no_row_with_it() -> None:
    upstream = FastAPI()

    @upstream.post("/v1/responses")
    async def refuse(request: Request) -> JSONResponse:
        sent = request.headers["authorization"]
        message = f"Incorrect API key provided: {sent.removeprefix('Bearer ')} ({sent})"
        return JSONResponse({"error": {"message": message}}, status_code=401)

    key = "sk-live-0123456789abcdefXYZ"
    async with serve_app(upstream) as url:
        server = OpenAIModelServer(
            config=OpenAIModelConfig(
                name="policy_model",
                openai_base_url=f"{url}/v1",
                openai_api_key=key,
                openai_model="gpt-x",
            ),
            server_client=ServerClient({}),
        )
        transport = httpx.ASGITransport(app=server.setup_webserver())
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            resp = await client.post("/v1/responses", json={"input": "hello"})
        await server.server_client.close()
    assert resp.status_code == 401
    assert key not in resp.text and "0123456789" not in resp.text
    assert "Incorrect API key provided: ***REDACTED***" in resp.text
