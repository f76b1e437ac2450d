"""The in-process client, row builders and sandbox helpers shared by this environment's tests."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_gym.authoring import ServerClient
from resources_servers.code_gen.app import CodeGenConfig, CodeGenServer
from resources_servers.code_gen.sandbox import Isolation, Sandbox, candidate_plans
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


#: Every plan but the strongest; "-as-caller" is rlimits-only as a non-root server runs it.
FALLBACKS = ["user-namespace", "user-namespace-no-proc", "rlimits-only", "rlimits-only-as-caller"]
#: What a forked process runs: the program sees no /bin, only the interpreter.
SLEEPER = "import time; time.sleep(1000)"


def plan_named(sandbox: Sandbox, name: str) -> Isolation:
    """A candidate plan by name (``rlimits-only-as-caller``: without the per-slot uid)."""
    base = name.removesuffix("-as-caller")
    plans = {p.plan: p for p in candidate_plans(sandbox.limits, os.geteuid() == 0)}
    if base not in plans:
        pytest.skip(f"plan {name} needs root (this test runs as uid {os.geteuid()})")
    if name.endswith("-as-caller"):
        return plans[base].model_copy(update={"unprivileged_uid": False, "nproc_relative": True})
    return plans[base]


def processes_with_arg(arg: str) -> list[int]:
    """Pids of the processes that have ``arg`` on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if arg.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def gone_within(arg: str, seconds: float) -> bool:
    """Whether no process has ``arg`` on its command line, polled until a deadline."""
    deadline = time.monotonic() + seconds
    while processes_with_arg(arg):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
