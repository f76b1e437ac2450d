"""ng_prepare_data's work (``datasets.prepare``) on hand-made configs and rows in a tmp project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nemo_gym.config.instances import ServerInstance, parse_server_instances
from nemo_gym.config.loader import load_config, resolve_config
from nemo_gym.core.errors import GymError, InputDataError
from nemo_gym.datasets.prepare import MetricsConflictError, prepare


def row(i: int, **extra: Any) -> dict[str, Any]:
    return {"responses_create_params": {"input": f"question {i}"}, "id": i, **extra}


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


CONFIG = """
first_agent:
  responses_api_agents:
    simple_agent:
      entrypoint: app.py
      datasets:
        - {name: train_a, type: train, jsonl_fpath: data/a_train.jsonl, license: MIT,
           num_repeats: 2, huggingface_identifier: {repo_id: org/a}}
        - {name: val_a, type: validation, jsonl_fpath: data/a_validation.jsonl, license: TBD}
        - {name: example, type: example, jsonl_fpath: data/example.jsonl}
second_agent:
  responses_api_agents:
    simple_agent:
      entrypoint: app.py
      datasets:
        - {name: train_b, type: train, jsonl_fpath: data/b_train.jsonl, license: Apache 2.0}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(CONFIG)
    write_rows(tmp_path / "data" / "a_train.jsonl", [row(1), row(2)])
    write_rows(tmp_path / "data" / "b_train.jsonl", [row(10, tag="x")])
    write_rows(tmp_path / "data" / "a_validation.jsonl", [row(3)])
    write_rows(tmp_path / "data" / "example.jsonl", [row(i) for i in range(5)])
    return tmp_path


def instances(root: Path) -> list[ServerInstance]:
    loaded = load_config([f"+config_paths=[{root / 'config.yaml'}]"], root=root)
    return parse_server_instances(resolve_config(loaded), loaded, check_files=False)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def ref(name: str) -> dict[str, str]:
    return {"type": "responses_api_agents", "name": name}


def test_train_preparation_collates_train_and_validation(project: Path) -> None:
    out = project / "out"
    result = prepare(instances(project), "train_preparation", out, root=project)
    assert result.outputs == {"train": out / "train.jsonl", "validation": out / "validation.jsonl"}
    # train_a's rows twice each in a row (aabb), then train_b's, each tagged with its agent
    assert lines(out / "train.jsonl") == [
        {**row(1), "agent_ref": ref("first_agent")},
        {**row(1), "agent_ref": ref("first_agent")},
        {**row(2), "agent_ref": ref("first_agent")},
        {**row(2), "agent_ref": ref("first_agent")},
        {**row(10, tag="x"), "agent_ref": ref("second_agent")},
    ]
    assert lines(out / "validation.jsonl") == [{**row(3), "agent_ref": ref("first_agent")}]
    assert (project / "data" / "a_train_prepare.jsonl").is_file()
    assert not (out / "example.jsonl").exists()  # example is not in this mode's scope

    train = json.loads((out / "train_metrics.json").read_text())
    # ids 1, 1, 2, 2, 10: mean 16/5 = 3.2; squared deviations 4.84 * 2 + 1.44 * 2 + 46.24 = 58.8,
    # / 4 = 14.7 -> std 3.834 -> 3.83
    assert train["Number of examples"] == 5
    assert train["id"] == {
        "Total # non-null values": 5,
        "Average": 3.2,
        "Min": 1.0,
        "Max": 10.0,
        "Standard deviation": 3.83,
    }
    assert train["tag"] == {"unique_count": 1, "total_count": 1}
    per_dataset = json.loads((project / "data" / "a_train_metrics.json").read_text())
    assert per_dataset["name"] == "train_a" and per_dataset["num_repeats"] == 2
    source = {"type": "huggingface", "repo_id": "org/a", "artifact_fpath": None}
    assert per_dataset["source"] == source
    assert per_dataset["Number of examples"] == 4
    assert per_dataset["id"]["Average"] == 1.5 and per_dataset["id"]["Standard deviation"] == 0.577


def test_example_validation_takes_only_example_datasets(project: Path) -> None:
    out = project / "out"
    result = prepare(instances(project), "example_validation", out, root=project)
    assert list(result.outputs) == ["example"]
    assert len(lines(out / "example.jsonl")) == 5
    metrics = json.loads((project / "data" / "example_metrics.json").read_text())
    assert metrics["Number of examples"] == 5 and metrics["license"] is None
    assert not (project / "data" / "a_train_metrics.json").exists()


def test_a_missing_file_names_dataset_path_and_source_and_nothing_is_written(
    project: Path,
) -> None:
    (project / "data" / "a_train.jsonl").unlink()
    with pytest.raises(GymError) as info:
        prepare(instances(project), "train_preparation", project / "out", root=project)
    message = str(info.value)
    assert "first_agent / train_a (train)" in message
    assert str(project / "data" / "a_train.jsonl") in message and "Hugging Face org/a" in message
    assert "does not download" in message and not (project / "out").exists()


def test_a_bad_row_names_file_and_line(project: Path) -> None:
    path = project / "data" / "a_validation.jsonl"
    path.write_text(json.dumps(row(3)) + "\n\n" + '{"id": 4}\n')
    with pytest.raises(InputDataError) as info:
        prepare(instances(project), "train_preparation", project / "out", root=project)
    assert info.value.path == str(path) and info.value.line == 3
    assert "responses_create_params" in str(info.value)


def test_a_stale_metrics_file_is_a_conflict_until_overwritten(project: Path) -> None:
    stale = project / "data" / "example_metrics.json"
    stale.write_text(json.dumps({"Number of examples": 4}))
    out = project / "out"
    with pytest.raises(MetricsConflictError) as info:
        prepare(instances(project), "example_validation", out, root=project)
    assert "Number of examples: 4 before, 5 now" in str(info.value)
    conflict = project / "data" / "example_metrics_conflict.json"
    assert json.loads(conflict.read_text())["Number of examples"] == 5
    assert json.loads(stale.read_text()) == {"Number of examples": 4}  # kept
    assert not (out / "example.jsonl").exists()  # nothing collated
    prepare(instances(project), "example_validation", out, root=project, overwrite_conflicts=True)
    assert json.loads(stale.read_text())["Number of examples"] == 5
    assert len(lines(out / "example.jsonl")) == 5


def test_no_dataset_in_scope_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "a:\n  responses_api_agents:\n    simple_agent:\n      entrypoint: app.py\n"
    )
    with pytest.raises(GymError, match="no agent in the config declares a dataset of type example"):
        prepare(instances(tmp_path), "example_validation", tmp_path / "out", root=tmp_path)
