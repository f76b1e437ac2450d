"""weather_condition over HTTP: the tool, the verifier on right, wrong and hedged answers, the
data files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_gym.authoring import ServerClient
from resources_servers.weather_condition.app import (
    CONDITIONS,
    WeatherConditionConfig,
    WeatherConditionServer,
    condition_of,
)
from tests.helpers import asgi_client, model_response
from tests.helpers import assistant_message as message

DATA = Path(__file__).resolve().parents[1] / "data"
ROW: dict[str, Any] = {
    "responses_create_params": {"input": "What's the weather in Oslo?"},
    "city": "Oslo",
    "condition": "windy",
}


def client() -> httpx.AsyncClient:
    server = WeatherConditionServer(
        config=WeatherConditionConfig(name="weather_condition"), server_client=ServerClient({})
    )
    return asgi_client(server)


async def verify(*texts: str, **fields: Any) -> httpx.Response:
    async with client() as c:
        return await c.post(
            "/verify",
            json={**ROW, **fields, "response": model_response([message(t) for t in texts])},
        )


def test_condition_of_is_a_fixed_function_of_the_folded_name() -> None:
    # sha256(b"oslo") starts with byte 0x8e = 142; 142 % 6 = 4: CONDITIONS[4] is "windy"
    import hashlib

    assert hashlib.sha256(b"oslo").digest()[0] == 142
    assert CONDITIONS[4] == "windy"
    assert condition_of("Oslo") == condition_of("  OSLO!") == "windy"


async def test_the_tool_reports_the_condition() -> None:
    async with client() as c:
        resp = await c.post("/get_weather", json={"city": "Oslo"})
    assert resp.json() == {"city": "Oslo", "condition": "windy"}


@pytest.mark.parametrize(
    ("texts", "reward", "named"),
    [
        (["It is windy in Oslo today."], 1.0, ["windy"]),
        (["Windy!"], 1.0, ["windy"]),
        (["It is sunny in Oslo."], 0.0, ["sunny"]),
        (["It could be windy or rainy."], 0.0, ["rainy", "windy"]),  # hedging earns nothing
        (["There is some wind."], 0.0, []),  # only the reported word counts
        (["It is sunny.", "Sorry: it is windy in Oslo."], 1.0, ["windy"]),  # the last answer
        ([], 0.0, []),
    ],
)
async def test_reward_is_for_naming_exactly_the_condition(
    texts: list[str], reward: float, named: list[str]
) -> None:
    resp = await verify(*texts)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["reward"] == reward
    assert body["named_conditions"] == named
    assert body["answer"] == (texts[-1] if texts else "")


async def test_a_row_that_disagrees_with_the_tool_is_refused() -> None:
    resp = await verify("windy", condition="sunny")
    assert resp.status_code == 422
    assert "'sunny' is not what get_weather reports for 'Oslo' ('windy')" in resp.text
    resp = await verify("windy", condition="hail")
    assert resp.status_code == 422
    assert "condition 'hail' is not one of" in resp.text


@pytest.mark.parametrize("name", ["train", "heldout", "example"])
def test_data_rows_agree_with_the_tool(name: str) -> None:
    rows = [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines()]
    assert rows
    for row in rows:
        assert row["condition"] == condition_of(row["city"])
        assert row["city"] in row["responses_create_params"]["input"][-1]["content"]


def test_train_and_heldout_cities_are_disjoint() -> None:
    def cities(name: str) -> set[str]:
        lines = (DATA / f"{name}.jsonl").read_text().splitlines()
        return {json.loads(line)["city"] for line in lines}

    assert len(cities("train")) == 24 and len(cities("heldout")) == 12
    assert not cities("train") & cities("heldout")
