"""Datasets declared in configs: the schema, the domains, the row summaries and the conflict rule.

Expected figures are computed by hand in the comments next to them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from nemo_gym.config.instances import DOMAINS, parse_server_instances
from nemo_gym.config.loader import load_config, resolve_config
from nemo_gym.core.errors import ConfigError, InputDataError
from nemo_gym.datasets.conflicts import check_against_existing, conflict_path, differences
from nemo_gym.datasets.metrics import WORDS_KEY, DatasetSummary
from nemo_gym.datasets.schema import LICENSES, DatasetConfig

NEMO_GYM_DOMAINS = [
    "math",
    "coding",
    "agent",
    "knowledge",
    "instruction_following",
    "long_context",
    "safety",
    "games",
    "translation",
    "e2e",
    "rlhf",
    "other",
]


def test_train_and_validation_need_a_license_example_does_not() -> None:
    with pytest.raises(ValidationError, match="dataset 'tr' of type train needs a `license`"):
        DatasetConfig(name="tr", type="train", jsonl_fpath="d/train.jsonl")
    with pytest.raises(ValidationError, match="type validation needs a `license`"):
        DatasetConfig(name="va", type="validation", jsonl_fpath="d/v.jsonl")
    example = DatasetConfig(name="ex", type="example", jsonl_fpath="d/example.jsonl")
    assert example.license is None and example.num_repeats == 1


@pytest.mark.parametrize("license_name", LICENSES)
def test_every_nemo_gym_license_is_accepted(license_name: str) -> None:
    d = DatasetConfig(name="t", type="train", jsonl_fpath="t.jsonl", license=license_name)
    assert d.license == license_name


def test_unknown_type_license_and_repeats_are_refused() -> None:
    with pytest.raises(ValidationError, match="type"):
        DatasetConfig(name="t", type="test", jsonl_fpath="t.jsonl")
    with pytest.raises(ValidationError, match="license"):
        DatasetConfig(name="t", type="train", jsonl_fpath="t.jsonl", license="Apache-2")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        DatasetConfig(name="t", type="example", jsonl_fpath="t.jsonl", num_repeats=0)


def test_benchmark_needs_its_prepare_script() -> None:
    with pytest.raises(ValidationError, match="benchmark dataset 'b' needs a `prepare_script`"):
        DatasetConfig(name="b", type="benchmark", jsonl_fpath="b.jsonl")
    b = DatasetConfig(name="b", type="benchmark", jsonl_fpath="b.jsonl", prepare_script="p.py")
    assert b.summary_fields()["prepare_script"] == "p.py"


def test_source_and_legacy_identifiers_mirror_each_other() -> None:
    gitlab = {"dataset_name": "ds", "version": "0.0.1", "artifact_fpath": "train.jsonl"}
    legacy = DatasetConfig(
        name="t", type="train", jsonl_fpath="t.jsonl", license="MIT", gitlab_identifier=gitlab
    )
    assert legacy.source is not None and legacy.source.model_dump() == {"type": "gitlab", **gitlab}
    unified = DatasetConfig(
        name="t",
        type="example",
        jsonl_fpath="t.jsonl",
        source={"type": "huggingface", "repo_id": "org/ds", "artifact_fpath": "e.jsonl"},
    )
    assert unified.huggingface_identifier is not None
    assert unified.huggingface_identifier.repo_id == "org/ds"
    assert unified.where_to_download() == "Hugging Face org/ds (e.jsonl)"
    with pytest.raises(ValidationError, match="give its source once"):
        DatasetConfig(
            name="t",
            type="example",
            jsonl_fpath="t.jsonl",
            source={"type": "gitlab", **gitlab},
            gitlab_identifier=gitlab,
        )


def test_metrics_file_header_has_nemo_gyms_fields_in_order() -> None:
    d = DatasetConfig(name="e", type="example", jsonl_fpath="e.jsonl", license="MIT", note="x")
    assert list(d.summary_fields()) == [
        "name",
        "type",
        "jsonl_fpath",
        "num_repeats",
        "source",
        "gitlab_identifier",
        "huggingface_identifier",
        "license",
    ]


def write_config(tmp_path: Path, domain: str) -> Path:
    folder = tmp_path / "resources_servers" / "env"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text("")
    path = tmp_path / "c.yaml"
    path.write_text(
        f"env:\n  resources_servers:\n    env:\n      entrypoint: app.py\n      domain: {domain}\n"
    )
    return path


def parse(tmp_path: Path, config: Path) -> list[str]:
    loaded = load_config([f"+config_paths=[{config}]"], root=tmp_path)
    return [i.name for i in parse_server_instances(resolve_config(loaded), loaded)]


def test_domains_are_nemo_gyms_twelve() -> None:
    assert sorted(DOMAINS) == sorted(NEMO_GYM_DOMAINS)


@pytest.mark.parametrize("domain", NEMO_GYM_DOMAINS)
def test_every_nemo_gym_domain_is_accepted(tmp_path: Path, domain: str) -> None:
    assert parse(tmp_path, write_config(tmp_path, domain)) == ["env"]


def test_an_unknown_domain_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, write_config(tmp_path, "maths"))
    assert info.value.key == "env.resources_servers.env.domain" and "'math'" in str(info.value)


def test_a_dataset_without_license_is_an_error_naming_its_key(tmp_path: Path) -> None:
    (tmp_path / "responses_api_agents" / "a").mkdir(parents=True)
    (tmp_path / "responses_api_agents" / "a" / "app.py").write_text("")
    path = tmp_path / "c.yaml"
    path.write_text(
        "agent:\n  responses_api_agents:\n    a:\n      entrypoint: app.py\n      datasets:\n"
        "        - {name: tr, type: train, jsonl_fpath: t.jsonl}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, path)
    assert info.value.key == "agent.responses_api_agents.a.datasets.0"
    assert "dataset 'tr' of type train needs a `license`" in str(info.value)


# Three rows whose figures are worked out by hand below.
ROWS = [
    {
        # json.dumps -> {"input": "hi", "tools": [1, 2], "temperature": 0.5}: 7 words
        "responses_create_params": {"input": "hi", "tools": [1, 2], "temperature": 0.5},
        "id": 1,
        "tag": "a",
        "flags": [True, False],
        "meta": {"ignored": 1},
    },
    {
        # 13 words; 2 user turns; no tools, no temperature
        "responses_create_params": {
            "input": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "y"},
                {"role": "user", "content": "z"},
            ]
        },
        "id": 2,
        "tag": "b",
    },
    {
        # {"input": [{"role": "developer", "content": "d"}], "tools": []}: 7 words; 0 user turns
        "responses_create_params": {"input": [{"role": "developer", "content": "d"}], "tools": []},
        "id": 4,
        "tag": "a",
        "response": {"output": [1, 2, 3]},
    },
]


def dist(n: int, avg: float, low: float, high: float, std: float) -> dict[str, object]:
    return {
        "Total # non-null values": n,
        "Average": avg,
        "Min": low,
        "Max": high,
        "Standard deviation": std,
    }


EXPECTED = {
    "Number of examples": 3,
    # tools 2, 0: mean 1, sample std sqrt((1 + 1) / 1) = 1.414 -> 1.41
    "Number of tools": dist(2, 1.0, 0.0, 2.0, 1.41),
    # words 7, 13, 7: mean 9, deviations -2, 4, -2 -> sqrt(24 / 2) = 3.464 -> 3.46
    WORDS_KEY: dist(3, 9.0, 7.0, 13.0, 3.46),
    # turns 1 (a string input), 2 (row 3 has no user turn: not counted)
    "Number of turns": dist(2, 1.5, 1.0, 2.0, 0.707),
    "Temperature": dist(1, 0.5, 0.5, 0.5, 0.0),
    # id 1, 2, 4: mean 7/3 = 2.33; squares 16/9 + 1/9 + 25/9 = 42/9, / 2 -> sqrt(2.333) = 1.53
    "id": dist(3, 2.33, 1.0, 4.0, 1.53),
    "tag": {"unique_count": 2, "total_count": 3},
    # flags True, False -> 1, 0: mean 0.5, std sqrt(0.5) = 0.707
    "flags": dist(2, 0.5, 0.0, 1.0, 0.707),
}


def test_summary_matches_hand_computed_figures() -> None:
    summary = DatasetSummary()
    for row in ROWS:
        summary.add_row(row)
    assert summary.to_json() == EXPECTED
    assert list(summary.to_json())[5:] == ["id", "tag", "flags"]


def test_merged_summaries_equal_one_summary_of_all_rows() -> None:
    first, second = DatasetSummary(), DatasetSummary()
    first.add_row(ROWS[0])
    for row in ROWS[1:]:
        second.add_row(row)
    first.merge(second)
    assert first.to_json() == EXPECTED


def test_an_empty_distribution_is_zeros_and_repeats_count() -> None:
    summary = DatasetSummary()
    for _ in range(2):
        summary.add_row({"responses_create_params": {"input": "q"}, "score": 3})
    out = summary.to_json()
    assert out["Number of examples"] == 2 and out["Temperature"] == dist(0, 0.0, 0.0, 0.0, 0.0)
    assert out["score"] == dist(2, 3.0, 3.0, 3.0, 0.0)


def test_a_field_mixing_numbers_and_strings_names_file_and_line() -> None:
    summary = DatasetSummary()
    summary.add_row({"responses_create_params": {"input": "q"}, "x": 1}, ("d.jsonl", 1))
    with pytest.raises(InputDataError, match=r"d.jsonl:2: field 'x' holds strings"):
        summary.add_row({"responses_create_params": {"input": "q"}, "x": "a"}, ("d.jsonl", 2))


def test_rounding_is_two_decimals_from_one_up_three_below() -> None:
    summary = DatasetSummary()
    for value in (0.12345, 0.12355):
        summary.add_row({"responses_create_params": {"input": "q"}, "v": value})
    # mean 0.1235 -> 0.123 or 0.124 by float rounding; std = 0.0001 / sqrt(2) = 7.07e-05 -> 0.0
    v = summary.to_json()["v"]
    assert v["Average"] == round(0.1235, 3) and v["Standard deviation"] == 0.0
    assert math.isclose(v["Min"], 0.123) and math.isclose(v["Max"], 0.124)


def test_differences_follow_nemo_gyms_tolerances() -> None:
    assert differences({"a": 1.0, "b": 0.5}, {"a": 1.004, "b": 0.5004, "new": 1}) == []
    assert differences({"a": 1.0}, {"a": 1.006}) == ["a: 1.0 before, 1.006 now"]
    assert differences({"b": 0.5}, {"b": 0.5006}) == ["b: 0.5 before, 0.5006 now"]
    assert differences({"n": 5}, {"n": 6}) == ["n: 5 before, 6 now"]
    assert differences({"x": {"y": 1}}, {"x": {}}) == ["x.y: missing from the new metrics"]
    assert differences({"l": [1, {"k": 2}]}, {"l": [{"k": 2}, 1]}) == []
    assert differences({"l": [1, 2]}, {"l": [1, 3]}) == ["l: the elements differ (order aside)"]


def test_a_conflict_is_written_beside_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "example_metrics.json"
    assert check_against_existing({"n": 1}, path) == []  # no file yet: nothing to compare
    path.write_text('{"n": 1}')
    assert check_against_existing({"n": 1, "m": 2}, path) == []
    assert check_against_existing({"n": 2}, path) == ["n: 1 before, 2 now"]
    assert conflict_path(path).name == "example_metrics_conflict.json"
    assert conflict_path(path).read_text() == '{\n    "n": 2\n}'
