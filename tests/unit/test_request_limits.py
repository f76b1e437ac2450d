"""Request bodies: over the size limit is 413 before parsing; type-confused fields are 422."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import Request

from nemo_gym.openai_utils import NeMoGymResponseCreateParamsNonStreaming
from nemo_gym.server.base import create_app
from nemo_gym.server.bodies import validated_json
from tests.helpers import serve_app


def limited_app() -> object:
    app = create_app("limited", role="resources_servers", max_body_mb=1 / 1024)  # 1 KiB

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/v1/responses")
    async def responses(request: Request) -> dict[str, str]:
        await validated_json(request, NeMoGymResponseCreateParamsNonStreaming)
        return {"ok": "yes"}

    return app


async def test_bodies_over_the_limit_are_413_with_or_without_content_length() -> None:
    # On uvicorn: the limit is checked on the body as a real server receives it, in chunks.
    async with serve_app(limited_app()) as url, httpx.AsyncClient(base_url=url) as client:
        small = await client.post("/echo", content=b"x" * 1000)
        assert small.status_code == 200 and small.json() == {"size": 1000}
        large = await client.post("/echo", content=b"x" * 5000)
        assert large.status_code == 413
        assert large.json()["error"]["type"] == "RequestTooLarge"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as received
            for _ in range(5):
                yield b"x" * 1000

        streamed = await client.post("/echo", content=chunks())
        assert streamed.status_code == 413
        assert "over this server's limit of 1024 bytes" in streamed.json()["error"]["message"]


async def test_a_type_confused_tool_name_is_422_naming_the_field() -> None:
    body = {"input": "hi", "tools": [{"type": "function", "name": {"a": 1}, "parameters": {}}]}
    transport = httpx.ASGITransport(app=limited_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://limited") as client:
        resp = await client.post("/v1/responses", json=body)
    assert resp.status_code == 422
    assert "tools.0.function.name" in resp.text


def test_key_like_tokens_are_redacted_from_upstream_text() -> None:
    from nemo_gym.config.secrets import redact_upstream_text

    text = "bad key sk-proj-ABCDEFGHIJKLMNOPQRST, header Bearer abcdefghijklmnopqrstuvwxyz12"
    assert redact_upstream_text(text) == "bad key ***REDACTED***, header ***REDACTED***"
    assert (
        redact_upstream_text("my-secret-value here", {"my-secret-value"}) == "***REDACTED*** here"
    )
    assert redact_upstream_text("sk-short is fine") == "sk-short is fine"
