"""structured_outputs over HTTP: valid, malformed and off-schema answers, bad schemas, the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import validators

from nemo_gym.authoring import ServerClient
from resources_servers.structured_outputs.app import (
    StructuredOutputsConfig,
    StructuredOutputsServer,
    StructuredOutputsVerifyRequest,
)
from resources_servers.structured_outputs.checking import MAX_ERRORS
from tests.helpers import asgi_client, model_response
from tests.helpers import assistant_message as message

DATA = Path(__file__).resolve().parents[1] / "data" / "example.jsonl"
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "owner": {
            "type": "object",
            "properties": {"email": {"type": "string"}, "a/b~c": {"type": "integer"}},
        },
    },
}
GOOD = {"name": "x", "tags": ["a"], "owner": {"email": "e@x", "a/b~c": 1}}
ROW: dict[str, Any] = {
    "responses_create_params": {"input": "Give me the record as JSON."},
    "schema_str": json.dumps(SCHEMA),
    "schema_type": "json",
}
#: One answer per example row (in file order) that fits its schema: each schema is satisfiable.
EXAMPLE_ANSWERS: list[dict[str, Any]] = [
    {
        "invoice_number": "INV-2041",
        "seller": "Nordlicht GmbH",
        "buyer": "Harbor Cafe",
        "currency": "EUR",
        "line_items": [
            {"description": "espresso beans", "quantity": 12, "unit_price": 18.5},
            {"description": "milk frother", "quantity": 4, "unit_price": 42.0},
        ],
    },
    {
        "people": [
            {"name": "Amara Osei", "role": "marine biologist"},
            {"name": "Lena Fischer", "role": "co-author"},
        ],
        "event": {"name": "Pacific Reef Symposium", "year": 2024, "city": "Suva"},
    },
    {
        "sentiment": "mixed",
        "positives": ["sound", "battery"],
        "negatives": ["ear cushions", "support"],
        "rating": 3,
    },
    {
        "flight": "LX 318",
        "origin": "ZRH",
        "destination": "LHR",
        "departure": "07:40",
        "arrival": "08:35",
    },
    {
        "title": "Lemon lentil soup",
        "servings": 4,
        "cook_minutes": 25,
        "ingredients": [
            {"name": "red lentils", "amount": "200 g"},
            {"name": "salt", "amount": None},
        ],
    },
    {"ticket_id": 5521, "priority": "high", "status": "open", "device": "Pixel 7"},
    {
        "revenue_musd": {"q1": 4.2, "q2": 4.9},
        "operating_costs_musd": 3.1,
        "new_offices": ["Lisbon", "Nairobi"],
        "hires": 37,
    },
]


def client() -> httpx.AsyncClient:
    config = StructuredOutputsConfig(name="so")
    return asgi_client(StructuredOutputsServer(config=config, server_client=ServerClient({})))


async def post_verify(row: dict[str, Any], *texts: str) -> httpx.Response:
    async with client() as c:
        return await c.post(
            "/verify", json={**row, "response": model_response([message(t) for t in texts])}
        )


async def verify(text: str, **fields: Any) -> dict[str, Any]:
    resp = await post_verify({**ROW, **fields}, text)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        "\n  " + json.dumps(GOOD, indent=2) + "\n",
        "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
        "```JSON\n" + json.dumps(GOOD) + "```",
        "```\n" + json.dumps(GOOD) + "\n```",
    ],
)
async def test_json_that_fits_the_schema_earns_the_reward(text: str) -> None:
    out = await verify(text)
    assert out["reward"] == 1.0 and out["error_kind"] is None and out["errors"] == []


@pytest.mark.parametrize("text", ["", "  \n ", "```json\n\n```"])
async def test_no_text_is_no_json(text: str) -> None:
    out = await verify(text)
    assert out["reward"] == 0.0 and out["error_kind"] == "no_json"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{"name": "x",\n  "tags": [}', 2, 12),
        ("Here is the JSON: " + json.dumps(GOOD), 1, 1),
        ("```json\n" + json.dumps(GOOD) + "\n```\nHope this helps!", 1, 1),
        # two blocks: the outer fences are stripped, the parse fails at the inner ones
        ("```json\n{}\n```\n```json\n{}\n```", 2, 1),
        (json.dumps(GOOD) + " trailing", 1, len(json.dumps(GOOD)) + 2),
        ("{'name': 'x'}", 1, 2),
    ],
)
async def test_text_that_does_not_parse_is_invalid_json_with_its_position(
    text: str, line: int, column: int
) -> None:
    out = await verify(text)
    assert out["reward"] == 0.0 and out["error_kind"] == "invalid_json"
    assert (out["error_position"]["line"], out["error_position"]["column"]) == (line, column)
    assert out["error_message"]


async def test_nan_is_not_json() -> None:
    out = await verify('{"name": NaN}')
    assert out["error_kind"] == "invalid_json" and "NaN" in out["error_message"]


@pytest.mark.parametrize(
    ("document", "path", "keyword"),
    [
        ({**GOOD, "name": 5}, "/name", "type"),
        ({**GOOD, "tags": ["a", 2]}, "/tags/1", "type"),
        ({**GOOD, "owner": {"email": "e", "a/b~c": "one"}}, "/owner/a~1b~0c", "type"),
        ({k: v for k, v in GOOD.items() if k != "tags"}, "", "required"),
        ({**GOOD, "extra": True}, "", "additionalProperties"),
        ({**GOOD, "owner": {"email": "e"}}, "/owner", "required"),
        ([GOOD], "", "type"),
    ],
)
async def test_schema_violations_are_recorded_with_their_path(
    document: Any, path: str, keyword: str
) -> None:
    out = await verify(json.dumps(document))
    assert out["reward"] == 0.0 and out["error_kind"] == "schema_violation"
    assert out["error_path"] == path and out["error_message"]
    assert any(e["path"] == path and e["keyword"] == keyword for e in out["errors"])
    assert out["errors_total"] == len(out["errors"])


async def test_strict_false_keeps_the_schema_as_written() -> None:
    partial = json.dumps({"name": "x", "anything": 1})
    assert (await verify(partial, strict=False))["reward"] == 1.0
    strict = await verify(partial)
    assert {e["keyword"] for e in strict["errors"]} == {"required", "additionalProperties"}


async def test_strict_overrides_additional_properties_and_reaches_nested_and_ref_schemas() -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
        "additionalProperties": True,
        "$defs": {"item": {"type": "object", "properties": {"id": {"type": "integer"}}}},
    }
    fields = {"schema_str": json.dumps(schema)}
    assert (await verify('{"items": [{"id": 1}]}', **fields))["reward"] == 1.0
    out = await verify('{"items": [{"id": 1}, {}], "more": 1}', **fields)
    assert {(e["path"], e["keyword"]) for e in out["errors"]} == {
        ("/items/1", "required"),
        ("", "additionalProperties"),
    }


async def test_a_property_named_properties_is_not_mistaken_for_a_keyword() -> None:
    schema = {"type": "object", "properties": {"properties": {"type": "string"}}}
    out = await verify('{"properties": "p"}', schema_str=json.dumps(schema))
    assert out["reward"] == 1.0


async def test_many_violations_are_capped() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    out = await verify(json.dumps(["x"] * 50), schema_str=json.dumps(schema))
    assert out["errors_total"] == 50 and len(out["errors"]) == MAX_ERRORS


async def test_the_schema_draft_follows_dollar_schema() -> None:
    # draft-07 ignores prefixItems; 2020-12 (the default) applies it
    schema = {"type": "array", "prefixItems": [{"type": "integer"}]}
    draft7 = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
    assert (await verify('["x"]', schema_str=json.dumps(schema)))["reward"] == 0.0
    assert (await verify('["x"]', schema_str=json.dumps(draft7)))["reward"] == 1.0


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"schema_str": "{not json"}, "schema_str", "not JSON"),
        ({"schema_str": "[1, 2]"}, "schema_str", "must be a JSON object"),
        ({"schema_str": '{"type": "strin"}'}, "schema_str", "not a valid JSON Schema"),
        (
            {"schema_str": '{"properties": {"a": {"minimum": "3"}}}'},
            "schema_str",
            "properties/a/minimum",
        ),
        ({"schema_str": '{"$schema": "https://example.com/mine"}'}, "schema_str", "$schema"),
        ({"schema_type": "xml"}, "schema_type", "json"),
        ({"strict": "sometimes"}, "strict", "bool"),
        ({"schema_str": None}, "schema_str", "string"),
    ],
)
async def test_bad_rows_are_rejected_naming_the_field(
    fields: dict[str, Any], field: str, words: str
) -> None:
    resp = await post_verify({**ROW, **fields}, json.dumps(GOOD))
    assert resp.status_code == 422
    message = resp.json()["error"]["message"]
    assert field in message and words in message


async def test_an_unresolvable_ref_is_bad_input_not_a_zero() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}
    resp = await post_verify({**ROW, "schema_str": json.dumps(schema)}, '{"a": 1}')
    assert resp.status_code == 422
    assert "schema_str" in resp.json()["detail"]


def example_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def test_every_example_row_is_a_valid_request_with_a_valid_schema() -> None:
    rows = example_rows()
    assert len(rows) >= 6 and len(rows) == len(EXAMPLE_ANSWERS)
    for row in rows:
        request = StructuredOutputsVerifyRequest.model_validate(
            {**row, "response": model_response()}
        )
        schema = json.loads(request.schema_str)
        validators.validator_for(schema).check_schema(schema)
        prompt = row["responses_create_params"]["input"][0]["content"]
        assert "Document:" in prompt and "Question:" in prompt and row["schema_str"] in prompt


async def test_each_example_schema_accepts_its_answer_and_rejects_an_empty_object() -> None:
    for row, answer in zip(example_rows(), EXAMPLE_ANSWERS, strict=True):
        good = (await post_verify(row, "```json\n" + json.dumps(answer) + "\n```")).json()
        empty = (await post_verify(row, "{}")).json()
        assert good["reward"] == 1.0, good["errors"]
        assert empty["reward"] == 0.0 and empty["error_kind"] == "schema_violation"
