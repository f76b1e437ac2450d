"""The in-process client and the row builders shared by this environment's tests."""

from __future__ import annotations

from typing import Any

import httpx

from nemo_gym.head.client import ServerClient
from resources_servers.code_gen.app import CodeGenConfig, CodeGenServer
from tests.helpers import asgi_client, model_response
from tests.helpers import assistant_message as message

#: Small limits keep the suite fast; the misbehaving programs hit them quickly.
TEST_LIMITS: dict[str, Any] = {
    "timeout_seconds": 2.0,
    "memory_mb": 512,
    "max_output_bytes": 1 << 20,
    "max_file_mb": 4,
    "max_processes": 16,
    "tmp_mb": 16,
}
SUM_TESTS = {"inputs": ["1 2\n", "-5 10\n", "7 8\n"], "outputs": ["3\n", "5\n", "15\n"]}
SUM_CODE = "a, b = map(int, input().split())\nprint(a + b)\n"


def make_server(**overrides: Any) -> CodeGenServer:
    config = CodeGenConfig(name="cg", **{**TEST_LIMITS, **overrides})
    return CodeGenServer(config=config, server_client=ServerClient({}))


def client(server: CodeGenServer | None = None) -> httpx.AsyncClient:
    return asgi_client(server or make_server())


def fenced(code: str, tag: str = "python") -> str:
    return f"Here is my solution.\n```{tag}\n{code}```\n"


def row(text: str, unit_tests: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "responses_create_params": {"input": "Write a program."},
        "verifier_metadata": {"unit_tests": unit_tests or SUM_TESTS},
        "response": model_response([message(text)]),
    }


async def verify(c: httpx.AsyncClient, text: str, unit_tests: dict[str, Any] | None = None) -> Any:
    resp = await c.post("/verify", json=row(text, unit_tests))
    assert resp.status_code == 200, resp.text
    return resp.json()
