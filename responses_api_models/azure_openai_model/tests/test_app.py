"""azure_openai_model: Azure's URLs, api-key header and deployment, against the fake endpoint."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from nemo_gym.authoring import ServerClient
from nemo_gym.openai_utils import NeMoGymResponse
from responses_api_models.azure_openai_model.app import (
    AzureOpenAIModelConfig,
    AzureOpenAIModelServer,
)
from tests.helpers import serve_app, serve_fake_openai


async def test_responses_and_chat_go_to_the_deployment_with_the_api_key() -> None:
    async with serve_fake_openai(fail_first=1, fail_status=429) as (url, fake):
        server = AzureOpenAIModelServer(
            config=AzureOpenAIModelConfig(
                name="policy_model",
                azure_endpoint=url.removesuffix("/v1"),
                api_key="az-key",
                api_version="2025-04-01-preview",
                deployment="gpt-dep",
                max_attempts=3,
            ),
            server_client=ServerClient({}),
        )
        transport = httpx.ASGITransport(app=server.setup_webserver())
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            resp = await client.post("/v1/responses", json={"input": "hello"})
            chat = await client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
            )
        await server.server_client.close()
    assert resp.status_code == 200, resp.text
    body = resp.json()
    NeMoGymResponse.model_validate(body)
    assert body["model"] == "gpt-dep"  # the fake echoes the model it was sent
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"]
    assert fake.requests == 3  # one 429 retried, then both calls
    assert fake.auth[1:] == ["api-key az-key api-version=2025-04-01-preview"] * 2


async def test_an_upstream_error_echoing_the_api_key_is_answered_with_it_redacted() -> None:
    key = "azure-key-0123456789"
    upstream = FastAPI()

    @upstream.post("/openai/responses")
    async def refuse(request: Request) -> JSONResponse:
        message = f"Access denied for key {request.headers['api-key']}"
        return JSONResponse({"error": {"message": message}}, status_code=401)

    async with serve_app(upstream) as url:
        server = AzureOpenAIModelServer(
            config=AzureOpenAIModelConfig(
                name="policy_model",
                azure_endpoint=url,
                api_key=key,
                api_version="2025-04-01-preview",
                deployment="gpt-dep",
            ),
            server_client=ServerClient({}),
        )
        transport = httpx.ASGITransport(app=server.setup_webserver())
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            resp = await client.post("/v1/responses", json={"input": "hello"})
        await server.server_client.close()
    assert resp.status_code == 401
    assert key not in resp.text
    assert "Access denied for key ***REDACTED***" in resp.json()["detail"]
