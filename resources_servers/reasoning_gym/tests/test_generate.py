"""reasoning_gym's generate.py: the shipped example data is exactly what it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemo_gym.authoring import ConfigError
from resources_servers.reasoning_gym.generate import DEFAULT_INSTRUCTION, generate

FOLDER = Path(__file__).resolve().parents[1]
CONFIG = FOLDER / "configs" / "reasoning_gym.yaml"


def test_the_example_data_is_regenerated_identically_from_the_config(tmp_path: Path) -> None:
    out = tmp_path / "example.jsonl"
    code = generate([f"+config_paths=[{CONFIG}]", f"+output_jsonl_fpath={out}"])
    assert code == 0
    assert out.read_bytes() == (FOLDER / "data" / "example.jsonl").read_bytes()


def test_generators_on_the_command_line_write_every_entry_in_order(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "chain.jsonl"
    argv = [
        "+generators=[{name: chain_sum, size: 4, seed: 9, config: {max_terms: 3}}]",
        f"+output_jsonl_fpath={out}",
        "+instruction='Answer in <answer></answer>.'",
    ]
    assert generate(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    refs = [row["reasoning_gym"] for row in rows]
    assert refs == [
        {"dataset": "chain_sum", "size": 4, "seed": 9, "config": {"max_terms": 3}, "index": i}
        for i in range(4)
    ]
    prompts = [row["responses_create_params"]["input"][0]["content"] for row in rows]
    assert all(p.endswith("\n\nAnswer in <answer></answer>.") for p in prompts)
    assert DEFAULT_INSTRUCTION not in prompts[0] and len(set(prompts)) == 4


def test_an_unknown_generator_on_the_command_line_is_a_config_error(tmp_path: Path) -> None:
    argv = [
        "+generators=[{name: spell_backwards, size: 2, seed: 1}]",
        f"+output_jsonl_fpath={tmp_path}/x",
    ]
    with pytest.raises(ConfigError, match=r"\+generators.0.name: .*did you mean 'spell_backward'"):
        generate(argv)
    assert not (tmp_path / "x").exists()


def test_a_config_without_the_instance_is_a_config_error(tmp_path: Path) -> None:
    argv = [f"+config_paths=[{CONFIG}]", "+instance_name=nope", f"+output_jsonl_fpath={tmp_path}/x"]
    with pytest.raises(ConfigError, match="no server instance 'nope' with generators"):
        generate(argv)


def test_a_bad_generator_in_a_config_file_names_its_key(tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text(
        "reasoning_gym:\n  resources_servers:\n    reasoning_gym:\n      entrypoint: app.py\n"
        "      generators:\n        - {name: basic_arithmetic, size: 2, seed: 1,"
        " config: {max_digit: 2}}\n"
    )
    argv = [f"+config_paths=[{config}]", f"+output_jsonl_fpath={tmp_path}/x"]
    with pytest.raises(ConfigError) as info:
        generate(argv)
    assert info.value.key == "reasoning_gym.resources_servers.reasoning_gym.generators.0"
    assert "no parameter 'max_digit' (did you mean 'max_digits'?)" in str(info.value)
