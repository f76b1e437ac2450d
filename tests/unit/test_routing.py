"""NeMo Gym's collection rules: agent per row, repeats per agent, a seed per repeat."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nemo_gym.core.errors import ConfigError
from nemo_gym.protocol.chat_conversion import ConversionError, responses_to_chat_request
from nemo_gym.rollouts.inputs import expand
from nemo_gym.rollouts.routing import add_seed, repeats_for, route_rows


def rows(*agents: str | None) -> list[dict[str, Any]]:
    return [
        {"responses_create_params": {"input": "hi"}, **({"agent_ref": {"name": a}} if a else {})}
        for a in agents
    ]


def test_a_rows_own_agent_ref_wins_and_agent_name_fills_the_rest() -> None:
    given = rows("math_agent", None)
    assert route_rows(given, "weather_agent") == ["math_agent", "weather_agent"]
    assert given[1]["agent_ref"] == {"type": "responses_api_agents", "name": "weather_agent"}


def test_rows_without_an_agent_are_named() -> None:
    with pytest.raises(ConfigError, match=r"in.jsonl: rows 2, 3 name no agent \(agent_ref\)"):
        route_rows(rows("a", None, None), None, "in.jsonl")


def test_repeats_per_agent_with_a_default() -> None:
    agents = ["a", "b", "c"]
    assert repeats_for(agents, {"a": 4, "_default": 2}) == [4, 2, 2]
    assert repeats_for(agents, 3) == [3, 3, 3] and repeats_for(agents, None) == [1, 1, 1]
    with pytest.raises(ConfigError, match=r"no entry for agents \['b', 'c'\] and no '_default'"):
        repeats_for(agents, {"a": 4})
    with pytest.raises(ConfigError, match=r"no row uses: \['d'\]"):
        repeats_for(agents, {"d": 1, "_default": 1})
    tasks = expand(rows("a", "b"), [2, 1])
    assert [(t.task_index, t.repeat_index) for t in tasks] == [(0, 0), (0, 1), (1, 0)]


def test_each_repeat_gets_its_seed_and_model_servers_apply_it() -> None:
    (first, second) = expand(rows("a"), 2)
    for task in (first, second):
        add_seed(task)
    extra = json.loads(second.row["responses_create_params"]["metadata"]["extra_body"])
    assert extra == {"seed": 1}
    assert "metadata" not in rows("a")[0]["responses_create_params"]  # the input row is intact
    request = responses_to_chat_request(second.row["responses_create_params"])
    assert request["seed"] == 1
    with pytest.raises(ConversionError, match="extra_body: not a JSON object"):
        responses_to_chat_request({"input": "hi", "metadata": {"extra_body": "[1]"}})
