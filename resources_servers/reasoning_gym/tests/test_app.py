"""reasoning_gym: verify on right and wrong answers, answer extraction, bad rows and bad config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from nemo_gym.authoring import ConfigError, ServerClient
from nemo_gym.server.launch import LaunchContext, build_server
from resources_servers.reasoning_gym.app import (
    ReasoningGymConfig,
    ReasoningGymServer,
    ReasoningGymVerifyRequest,
)
from resources_servers.reasoning_gym.generators import EntryRef
from tests.helpers import asgi_client, model_response
from tests.helpers import assistant_message as message

DATA = Path(__file__).resolve().parents[1] / "data" / "example.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text().splitlines()]
FIRST = ROWS[0]


def client() -> httpx.AsyncClient:
    config = ReasoningGymConfig(name="rg")
    return asgi_client(ReasoningGymServer(config=config, server_client=ServerClient({})))


def answer_of(row: dict[str, Any]) -> str:
    return str(EntryRef.model_validate(row["reasoning_gym"]).entry()["answer"])


async def post(row: dict[str, Any], output: list[dict[str, Any]]) -> httpx.Response:
    async with client() as c:
        return await c.post("/verify", json={**row, "response": model_response(output)})


async def verify(row: dict[str, Any], text: str) -> dict[str, Any]:
    resp = await post(row, [message(text)])
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_example_rows_parse_as_verify_requests() -> None:
    assert len(ROWS) >= 8
    assert len({row["reasoning_gym"]["dataset"] for row in ROWS}) >= 3
    for row in ROWS:
        ReasoningGymVerifyRequest.model_validate({**row, "response": model_response()})


@pytest.mark.parametrize(
    "row", ROWS, ids=lambda r: "{dataset}-{index}".format(**r["reasoning_gym"])
)
async def test_the_expected_answer_in_tags_scores_one(row: dict[str, Any]) -> None:
    expected = answer_of(row)
    out = await verify(row, f"Let me work it out.\n<answer>{expected}</answer>")
    assert out["reward"] == 1.0 and out["score"] == 1.0
    assert out["extracted_answer"] == expected and out["expected_answer"] == expected
    assert out["dataset"] == row["reasoning_gym"]["dataset"]


@pytest.mark.parametrize(
    "row", ROWS, ids=lambda r: "{dataset}-{index}".format(**r["reasoning_gym"])
)
async def test_a_wrong_answer_scores_below_one(row: dict[str, Any]) -> None:
    out = await verify(row, "<answer>zebra 77 quux</answer>")
    assert out["extracted_answer"] == "zebra 77 quux"
    assert 0.0 <= out["reward"] < 1.0 and out["score"] == out["reward"]


async def test_without_answer_tags_there_is_no_answer_and_no_reward() -> None:
    expected = answer_of(FIRST)
    for text in (expected, f"The answer is {expected}.", f"<answer>{expected}", ""):
        out = await verify(FIRST, text)
        assert out["reward"] == 0.0 and out["extracted_answer"] is None, text
        assert out["expected_answer"] == expected


async def test_the_last_answer_tag_wins() -> None:
    expected = answer_of(FIRST)
    right_last = await verify(FIRST, f"<answer>1234</answer> no wait <answer>{expected}</answer>")
    wrong_last = await verify(FIRST, f"<answer>{expected}</answer> no wait <answer>1234</answer>")
    assert right_last["reward"] == 1.0 and right_last["extracted_answer"] == expected
    assert wrong_last["reward"] < 1.0 and wrong_last["extracted_answer"] == "1234"


async def test_answers_inside_thinking_do_not_count() -> None:
    expected = answer_of(FIRST)
    inside = await verify(FIRST, f"<think>maybe <answer>{expected}</answer></think>")
    after = await verify(
        FIRST, f"<think><answer>1234</answer></think>\n<answer>{expected}</answer>"
    )
    assert inside["reward"] == 0.0 and inside["extracted_answer"] is None
    assert after["reward"] == 1.0


async def test_reasoning_items_are_not_the_final_text() -> None:
    expected = answer_of(FIRST)
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": f"<answer>{expected}</answer>"}],
    }
    resp = await post(FIRST, [reasoning, message("I am not sure.")])
    assert resp.status_code == 200 and resp.json()["extracted_answer"] is None


def with_ref(**changes: Any) -> dict[str, Any]:
    return {**FIRST, "reasoning_gym": {**FIRST["reasoning_gym"], **changes}}


@pytest.mark.parametrize(
    ("row", "field", "says"),
    [
        (with_ref(dataset="basic_arithmetc"), "reasoning_gym.dataset", "'basic_arithmetic'?"),
        (with_ref(index=3), "reasoning_gym.index", "out of range for a dataset of size 3"),
        (with_ref(index=-1), "reasoning_gym.index", "greater than or equal to 0"),
        (with_ref(config={"max_term": 3}), "reasoning_gym.config", "did you mean 'max_terms'"),
        (with_ref(config={"seed": 3}), "reasoning_gym.config", "'seed' is set beside config"),
        (with_ref(colour="red"), "reasoning_gym.colour", "Extra inputs are not permitted"),
    ],
)
async def test_a_bad_entry_reference_is_a_422_naming_the_field(
    row: dict[str, Any], field: str, says: str
) -> None:
    resp = await post(row, [message("<answer>2</answer>")])
    assert resp.status_code == 422
    assert f"body.{field}" in resp.json()["error"]["message"] and says in resp.text


async def test_config_values_the_generator_rejects_are_a_422() -> None:
    resp = await post(with_ref(config={"min_terms": 5, "max_terms": 2}), [message("x")])
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("reasoning_gym.config: basic_arithmetic")


async def test_a_row_whose_prompt_is_not_its_entry_is_a_422() -> None:
    stale = with_ref(seed=999)
    resp = await post(stale, [message("<answer>2</answer>")])
    assert resp.status_code == 422 and "does not contain the question" in resp.text


async def test_a_scorer_that_fails_is_a_server_error_not_a_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset = EntryRef.model_validate(FIRST["reasoning_gym"]).load()

    def broken(answer: str | None, entry: dict[str, Any]) -> float:
        raise KeyError("metadata")

    monkeypatch.setattr(dataset, "score_answer", broken)
    resp = await post(FIRST, [message("<answer>2</answer>")])
    assert resp.status_code == 500 and resp.json()["error"]["type"] == "KeyError"


def spec(**changes: Any) -> dict[str, Any]:
    return {"name": "basic_arithmetic", "size": 4, "seed": 1, **changes}


@pytest.mark.parametrize(
    ("generator", "says"),
    [
        (spec(name="basic_arithmetc"), "did you mean 'basic_arithmetic'?"),
        (spec(config={"max_term": 3}), "basic_arithmetic has no parameter 'max_term'"),
        (spec(config={"min_terms": 5, "max_terms": 2}), "basic_arithmetic rejects config"),
        (spec(name="composite"), "composite rejects config"),
        (spec(config={"size": 9}), "'size' is set beside config"),
        (spec(size=0), "greater than or equal to 1"),
        (spec(sise=3), "Extra inputs are not permitted"),
    ],
)
def test_bad_generators_in_the_server_config_are_rejected(
    generator: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError, match=says.replace("?", r"\?")):
        ReasoningGymConfig.model_validate({"name": "rg", "generators": [generator]})


def test_a_bad_generator_stops_startup_with_a_config_error_naming_the_key() -> None:
    settings = {"entrypoint": "app.py", "generators": [spec(), spec(name="chainsum")]}
    context = LaunchContext(
        config={"reasoning_gym": {"resources_servers": {"reasoning_gym": settings}}},
        instance_name="reasoning_gym",
    )
    with pytest.raises(ConfigError) as info:
        build_server(ReasoningGymServer, context)
    assert info.value.key == "reasoning_gym.resources_servers.reasoning_gym.generators.1.name"
    assert "unknown reasoning-gym generator 'chainsum'" in str(info.value)
    assert "did you mean 'chain_sum'?" in str(info.value)
