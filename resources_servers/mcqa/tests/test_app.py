"""mcqa over HTTP: verify on right, wrong and ambiguous responses, bad rows, the example data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_gym.authoring import ServerClient
from resources_servers.mcqa.app import McqaConfig, McqaServer, McqaVerifyRequest
from tests.helpers import asgi_client, model_response
from tests.helpers import assistant_message as message

DATA = Path(__file__).resolve().parents[1] / "data" / "example.jsonl"
ROW: dict[str, Any] = {
    "responses_create_params": {"input": "Capital of Germany? A) Paris B) London C) Berlin"},
    "options": [{"A": "Paris"}, {"B": "London"}, {"C": "Berlin"}, {"D": "Rome"}],
    "expected_answer": "c",
}


def client() -> httpx.AsyncClient:
    return asgi_client(McqaServer(config=McqaConfig(name="mcqa"), server_client=ServerClient({})))


async def post_verify(row: dict[str, Any], *texts: str) -> httpx.Response:
    async with client() as c:
        return await c.post(
            "/verify", json={**row, "response": model_response([message(t) for t in texts])}
        )


async def verify(*texts: str, **fields: Any) -> dict[str, Any]:
    resp = await post_verify({**ROW, **fields}, *texts)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("C", "bare_letter"),
        ("(C)", "bare_letter"),
        ("Answer: C", "answer_marker"),
        ("The answer is (C).", "answer_marker"),
        (r"\boxed{C}", "boxed"),
        (r"\boxed{\text{C}}", "boxed"),
        (r"\boxed{\text{ berlin }}", "boxed"),
        ("berlin", "option_text"),
    ],
)
async def test_the_gold_letter_earns_the_reward(text: str, method: str) -> None:
    out = await verify(text)
    assert out["reward"] == 1.0
    assert out["expected_answer"] == "C" and out["extracted_answer"] == "C"
    assert out["extraction_method"] == method and out["extraction_reason"] is None


@pytest.mark.parametrize(
    ("text", "extracted", "reason"),
    [
        ("Answer: A", "A", None),
        (r"\boxed{B}", "B", None),
        ("Answer: A or C", None, "multiple_options"),
        (r"\boxed{A, C}", None, "multiple_options"),
        ("Berlin or Paris", None, "multiple_options"),
        (r"\boxed{E}", None, "not_an_option"),
        ("I cannot tell.", None, "no_answer_found"),
    ],
)
async def test_wrong_or_ambiguous_answers_earn_nothing(
    text: str, extracted: str | None, reason: str | None
) -> None:
    out = await verify(text)
    assert out["reward"] == 0.0
    assert out["extracted_answer"] == extracted and out["extraction_reason"] == reason
    if reason == "multiple_options":
        assert out["named_options"] == ["A", "C"]


async def test_all_assistant_messages_are_read_and_the_last_marker_wins() -> None:
    out = await verify("Answer: A", r"On reflection, \boxed{C}")
    assert out["reward"] == 1.0 and out["extraction_method"] == "boxed"
    nothing = await verify()
    assert nothing["reward"] == 0.0 and nothing["extraction_reason"] == "no_answer_found"


async def test_grading_mode_and_template_regex_from_the_row() -> None:
    strict = await verify("Answer: C", grading_mode="strict_single_letter_boxed")
    assert strict["reward"] == 0.0 and strict["extraction_reason"] == "no_answer_found"
    template = {"template_id": "t1", "output_regex": r"my pick is \[(\w)\]"}
    picked = await verify(r"\boxed{A}. My pick is [c]", template_metadata=template)
    assert picked["reward"] == 1.0 and picked["extraction_method"] == "output_regex"
    assert picked["template_metadata"] == template


async def test_option_letters_are_upper_cased_and_echoed() -> None:
    out = await verify("b", options=[{"a": "x"}, {"b": "y"}], expected_answer="B")
    assert out["reward"] == 1.0 and out["options"] == [{"A": "x"}, {"B": "y"}]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"options": [{"A": "x", "B": "y"}, {"C": "z"}]}, "options", "exactly one key"),
        ({"options": [{"AB": "x"}, {"C": "z"}]}, "options", "single letter"),
        ({"options": [{"A": "x"}, {"a": "z"}]}, "options", "distinct letters"),
        ({"options": [{"A": "x"}]}, "options", "at least two"),
        ({"expected_answer": "E"}, "expected_answer", "not one of the option letters"),
        ({"grading_mode": "fuzzy"}, "grading_mode", "lenient"),
        ({"template_metadata": {"output_regex": "(["}}, "output_regex", "does not compile"),
        ({"options": None}, "options", "list"),
    ],
)
async def test_bad_rows_are_rejected_naming_the_field(
    fields: dict[str, Any], field: str, words: str
) -> None:
    resp = await post_verify({**ROW, **fields}, "C")
    assert resp.status_code == 422
    assert field in resp.json()["error"]["message"] and words in resp.json()["error"]["message"]


def test_every_example_row_is_a_valid_request() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    assert len(rows) >= 6
    for row in rows:
        request = McqaVerifyRequest.model_validate({**row, "response": model_response()})
        assert len(request.option_map()) == 4
        assert request.expected_answer in request.option_map()
    assert sum("template_metadata" in row for row in rows) >= 2


async def test_example_rows_reward_their_gold_letter_and_no_other() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    for row in rows:
        gold = row["expected_answer"]
        wrong = next(k for option in row["options"] for k in option if k != gold)
        right = (await post_verify(row, f"Answer: {gold}\n\\boxed{{{gold}}}")).json()
        other = (await post_verify(row, f"Answer: {wrong}\n\\boxed{{{wrong}}}")).json()
        assert (right["reward"], other["reward"]) == (1.0, 0.0), row["uuid"]
