"""example_multi_step: the tools over HTTP, and verify on right and wrong trajectories."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nemo_gym.authoring import ServerClient
from resources_servers.example_multi_step.app import (
    MultiStepConfig,
    MultiStepServer,
    synonym_value,
)
from tests.helpers import model_response

SYNS = ["joyful", "cheerful"]
VALUES = [synonym_value(s) for s in SYNS]


def client() -> httpx.AsyncClient:
    server = MultiStepServer(config=MultiStepConfig(name="ms"), server_client=ServerClient({}))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.setup_webserver()), base_url="http://ms"
    )


def call(name: str, arguments: str, n: int = 0) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc{n}",
        "call_id": f"c{n}",
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


async def verify(output: list[dict[str, Any]]) -> dict[str, Any]:
    row = {
        "responses_create_params": {"input": "synonyms"},
        "expected_synonyms": SYNS,
        "expected_synonym_values": VALUES,
        "minefield_label": "happy",
        "minefield_label_value": synonym_value("happy"),
        "response": model_response(output),
    }
    async with client() as c:
        resp = await c.post("/verify", json=row)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_tools_compute_values_and_accept_the_submission() -> None:
    async with client() as c:
        value = await c.post("/get_synonym_value", json={"synonym": "joyful"})
        done = await c.post("/extract_synonym_values", json={"synonym_values": VALUES})
    assert value.json() == {"synonym_value": sum(map(ord, "joyful"))}
    assert done.json() == {"success": True}


async def test_exact_ordered_submission_earns_the_reward() -> None:
    lookups = [call("get_synonym_value", json.dumps({"synonym": s}), i) for i, s in enumerate(SYNS)]
    out = await verify(
        [*lookups, call("extract_synonym_values", json.dumps({"synonym_values": VALUES}), 9)]
    )
    assert out["reward"] == 1.0 and out["accuracy"] is True and out["set_overlap"] == 1.0
    assert out["parsed_synonym_values"] == VALUES


@pytest.mark.parametrize(
    ("submitted", "fields"),
    [
        (list(reversed(VALUES)), {"order_instruction_following_failure": True, "set_overlap": 1.0}),
        ([*VALUES, synonym_value("happy")], {"original_term_minefield_hit": True}),
        (VALUES[:1], {"set_overlap": 0.5, "order_instruction_following_failure": False}),
    ],
)
async def test_wrong_submissions_earn_nothing(submitted: list[int], fields: dict[str, Any]) -> None:
    out = await verify([call("extract_synonym_values", json.dumps({"synonym_values": submitted}))])
    assert out["reward"] == 0.0 and out["accuracy"] is False
    for key, value in fields.items():
        assert out[key] == value


async def test_no_usable_submission_earns_nothing() -> None:
    missing = await verify([call("get_synonym_value", '{"synonym": "joyful"}')])
    broken = await verify([call("extract_synonym_values", '{"synonym_values": [1, ')])
    for out in (missing, broken):
        assert out["reward"] == 0.0 and out["parsed_synonym_values"] is None
