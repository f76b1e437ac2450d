"""instruction_following: /verify over HTTP on whole rows, bad rows, and the example data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_gym.authoring import ServerClient
from resources_servers.instruction_following.app import (
    InstructionFollowingConfig,
    InstructionFollowingServer,
    InstructionRow,
)
from tests.helpers import model_response

DATA = Path(__file__).resolve().parents[1] / "data" / "example.jsonl"
ROW: dict[str, Any] = {
    "id": 7,
    "prompt": "Describe rain.",
    "responses_create_params": {"input": "Describe rain."},
    "instruction_id_list": [
        "change_case:english_lowercase",
        "punctuation:no_comma",
        "length_constraints:number_words",
    ],
    "kwargs": [{}, {}, {"relation": "less than", "num_words": 8}],
}


def client(loose: bool = False) -> httpx.AsyncClient:
    config = InstructionFollowingConfig(name="if", loose=loose)
    server = InstructionFollowingServer(config=config, server_client=ServerClient({}))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.setup_webserver()), base_url="http://if"
    )


def message(text: str, n: int = 0, *parts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg{n}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": t, "annotations": []} for t in (text, *parts)],
    }


REASONING = {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "X, Y"}]}


async def post(output: list[dict[str, Any]], loose: bool = False, **row: Any) -> httpx.Response:
    async with client(loose) as c:
        return await c.post("/verify", json={**ROW, **row, "response": model_response(output)})


async def verify(output: list[dict[str, Any]], loose: bool = False, **row: Any) -> dict[str, Any]:
    resp = await post(output, loose, **row)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_all_instructions_followed_earns_the_reward() -> None:
    out = await verify([message("soft rain falls on quiet roofs.")])
    assert out["reward"] == 1.0 and out["follow_all_instructions"] is True
    assert out["follow_instruction_list"] == [True, True, True]
    assert out["fraction_followed"] == 1.0
    assert out["id"] == 7 and out["instruction_id_list"] == ROW["instruction_id_list"]


@pytest.mark.parametrize(
    ("text", "followed"),
    [
        ("Soft rain falls on quiet roofs.", [False, True, True]),
        ("soft rain, quiet roofs.", [True, False, True]),
        ("Soft rain, falling on quiet roofs all night long.", [False, False, False]),
    ],
)
async def test_partial_credit_is_recorded_but_earns_nothing(
    text: str, followed: list[bool]
) -> None:
    out = await verify([message(text)])
    assert out["reward"] == 0.0 and out["follow_all_instructions"] is False
    assert out["follow_instruction_list"] == followed
    assert out["fraction_followed"] == pytest.approx(sum(followed) / 3)


async def test_only_the_trailing_assistant_text_is_checked() -> None:
    # The earlier message has capitals and commas; the reasoning has a comma: both ignored.
    earlier = message("Earlier, Loud text.", 0)
    call = {"type": "function_call", "id": "fc", "call_id": "c", "name": "f", "arguments": "{}"}
    out = await verify([earlier, call, REASONING, message("soft rain", 1, " on roofs."), REASONING])
    assert out["follow_instruction_list"] == [True, True, True]
    # Two trailing messages are joined by a newline and checked together.
    out = await verify([message("soft rain", 0), message("Falls", 1)])
    assert out["follow_instruction_list"] == [False, True, True]


async def test_no_final_text_follows_nothing() -> None:
    for output in ([], [REASONING], [message("   ")]):
        out = await verify(output)
        assert out["reward"] == 0.0 and out["follow_instruction_list"] == [False, False, False]


async def test_json_inside_a_fence_counts_as_json() -> None:
    row = {"instruction_id_list": ["detectable_format:json_format"], "kwargs": [{}]}
    fenced = await verify([message('```json\n{"capital": "Paris"}\n```')], **row)
    chatty = await verify([message('Here you go:\n```json\n{"capital": "Paris"}\n```')], **row)
    assert fenced["reward"] == 1.0 and chatty["reward"] == 0.0
    loose = await verify([message('Here you go:\n```json\n{"capital": "Paris"}\n```')], True, **row)
    assert loose["reward"] == 1.0


@pytest.mark.parametrize(
    ("row", "named"),
    [
        (
            {
                "instruction_id_list": ["keywords:existence", "detectable_format:bogus"],
                "kwargs": [{"keywords": ["rain"]}, {}],
            },
            "instruction 1 'detectable_format:bogus' is not a known instruction id",
        ),
        (
            {"kwargs": [{}, {}, {"relation": "less than", "num_word": 8}]},
            "instruction 2 'length_constraints:number_words' has bad kwargs",
        ),
        ({"kwargs": [{}, {}]}, "kwargs has 2 entries but instruction_id_list has 3"),
        ({"instruction_id_list": [], "kwargs": []}, "instruction_id_list"),
        (
            {"instruction_id_list": ["language:response_language"], "kwargs": [{"language": "de"}]},
            "not supported",
        ),
    ],
)
async def test_bad_rows_answer_422_naming_the_problem(row: dict[str, Any], named: str) -> None:
    resp = await post([message("soft rain")], **row)
    assert resp.status_code == 422
    assert named in resp.json()["error"]["message"]


async def test_missing_kwarg_is_named() -> None:
    resp = await post([message("x")], kwargs=[{}, {}, {"relation": "less than"}])
    assert resp.status_code == 422
    assert "num_words: Field required" in resp.json()["error"]["message"]


def test_every_example_row_is_a_valid_task() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    assert len(rows) >= 8
    for row in rows:
        parsed = InstructionRow.model_validate(row)
        assert len(parsed.instructions) == len(row["instruction_id_list"])
        prompt_message = {"role": "user", "content": row["prompt"]}
        assert row["responses_create_params"]["input"] == [prompt_message]
    assert len({r["id"] for r in rows}) == len(rows)


# A hand-written answer per example row that follows all its instructions: every task is doable.
ANSWERS = {
    0: "Hi Sam, could you water my basil and ferns while I am away? I return on Friday. Thanks!",
    1: "grey rain taps on the roofs and the streets shine.\n\nthe cafe windows fog up.",
    2: "* It strengthens the heart.\n* It lifts the mood.\n* It helps you sleep.",
    3: "<<The Sea>>\n*Waves roll in* and *gulls cry* above the tide.",
    4: '```json\n{"name": "France", "capital": "Paris", "population": 68000000}\n```',
    5: "SECTION 1\nA compiler reads source code.\nSECTION 2\nIt emits machine code.\n\nP.S. Neat!",
    6: "Dear [name],\nWe offer you the role of [title] at [company].\nAny other questions?",
    7: "Bean There\n******\nThe Daily Grind",
    8: "Write a slogan for a bicycle brand.\nRide further, smile wider.",
    9: '"Yes. Water is safe to learn in, and water skills save lives."',
    10: "GIVE EVERYTHING TODAY. WE WIN TOGETHER!",
    11: "The KEY was gone.\n***\nI searched the house.\n***\nIt was in my COAT all along.",
    12: "Tea is calm and warm.\n\nHowever, coffee wakes you up. My answer is maybe.",
}


async def test_every_example_task_can_be_fully_followed() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    assert set(ANSWERS) == {row["id"] for row in rows}
    async with client() as c:
        for row in rows:
            resp = await c.post(
                "/verify", json={**row, "response": model_response([message(ANSWERS[row["id"]])])}
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["follow_instruction_list"] == [True] * len(row["kwargs"]), row["id"]
            assert resp.json()["reward"] == 1.0
