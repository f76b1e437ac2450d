"""ng_init_resources_server and ng_test parts: entrypoint checks, templates, data checks."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nemo_gym.core.errors import ConfigError, GymError, InputDataError
from nemo_gym.scaffold.create import create_environment, title_case
from nemo_gym.scaffold.entrypoint import ServerFolder, parse_entrypoint
from nemo_gym.scaffold.run_tests import needs_asyncio_auto, pytest_environ
from nemo_gym.scaffold.validate import validate_data, validate_example_data
from tests.helpers import REPO


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("my_env", "must be <server_type>/<name>"),
        ("resources_servers/a/b", "must be <server_type>/<name>"),
        ("resource_servers/my_env", "must be <server_type>/<name>"),
        ("resources_servers/My-Env", "not a usable name"),
        ("resources_servers/1env", "not a usable name"),
    ],
)
def test_bad_entrypoints_are_named(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        parse_entrypoint(value, root=Path("/x"))
    assert "+entrypoint=" in str(info.value)


def test_entrypoint_resolves_under_the_root() -> None:
    folder = parse_entrypoint("resources_servers/my_env/", root=Path("/proj"))
    assert folder.path == Path("/proj/resources_servers/my_env")
    assert folder.relative == "resources_servers/my_env" and title_case("my_env") == "MyEnv"


def test_scaffold_never_overwrites(tmp_path: Path) -> None:
    folder = parse_entrypoint("resources_servers/new_env", root=tmp_path)
    created = create_environment(folder)
    assert folder.path / "configs" / "new_env.yaml" in created
    app = (folder.path / "app.py").read_text()
    assert "class NewEnvServer(SimpleResourcesServer)" in app and "$" not in app
    (folder.path / "app.py").write_text("# mine")
    with pytest.raises(GymError, match="already exists"):
        create_environment(folder)
    assert (folder.path / "app.py").read_text() == "# mine"


def copy_data(tmp_path: Path, name: str) -> tuple[ServerFolder, Path]:
    folder = parse_entrypoint(f"resources_servers/{name}", root=REPO)
    data = tmp_path / "example.jsonl"
    shutil.copy(folder.path / "data" / "example.jsonl", data)
    return folder, data


def test_data_check_names_the_line_and_the_missing_verify_field(tmp_path: Path) -> None:
    folder, data = copy_data(tmp_path, "example_multi_step")
    assert validate_example_data(folder, data) >= 5
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    del rows[2]["expected_synonym_values"]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputDataError) as info:
        validate_example_data(folder, data)
    assert info.value.line == 3 and "expected_synonym_values" in str(info.value)


def test_data_check_wants_five_tasks(tmp_path: Path) -> None:
    folder, data = copy_data(tmp_path, "example_single_tool_call")
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:4]))
    with pytest.raises(InputDataError, match="has 4 tasks; an environment needs at least 5"):
        validate_example_data(folder, data)


ENVIRONMENTS = sorted(
    d.name for d in (REPO / "resources_servers").iterdir() if (d / "app.py").is_file()
)


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_every_environment_ships_valid_example_data(name: str) -> None:
    """What ng_test +should_validate_data=true checks, for every environment in the repo."""
    folder = parse_entrypoint(f"resources_servers/{name}", root=REPO)
    tasks, rollouts = validate_data(folder)
    rows = (folder.path / "data" / "example.jsonl").read_text().splitlines()
    assert tasks == len(rows) >= 5 and rollouts == 5
    assert (folder.path / "configs" / f"{name}.yaml").is_file()
    assert (folder.path / "README.md").is_file() and (folder.path / "tests").is_dir()


def copied_folder(tmp_path: Path, name: str = "mcqa") -> ServerFolder:
    """A copy of a shipped environment in a project at ``tmp_path`` (its app is imported from
    there, not from the repo, although the repo's ``resources_servers`` is importable too)."""
    rel = Path("resources_servers") / name
    shutil.copytree(REPO / rel, tmp_path / rel, ignore=shutil.ignore_patterns("__pycache__"))
    return ServerFolder("resources_servers", name, tmp_path)


def test_data_check_counts_tasks_and_rollouts(tmp_path: Path) -> None:
    folder = copied_folder(tmp_path)
    assert validate_data(folder) == (8, 5)  # mcqa: 8 example tasks, 5 example rollouts
    # the copy's own verify is checked: a field only it requires is missing from every row
    app = folder.path / "app.py"
    line = "class McqaVerifyRequest(BaseVerifyRequest):\n"
    app.write_text(app.read_text().replace(line, line + "    tmp_only_field: int\n"))
    with pytest.raises(InputDataError, match="tmp_only_field") as info:
        validate_data(folder)
    assert info.value.line == 1


def test_data_check_wants_the_metrics_file_with_the_right_count(tmp_path: Path) -> None:
    folder = copied_folder(tmp_path)
    metrics = folder.path / "data" / "example_metrics.json"
    content = json.loads(metrics.read_text())
    metrics.unlink()
    with pytest.raises(GymError, match="example_metrics.json not found") as info:
        validate_data(folder)
    assert "ng_prepare_data" in str(info.value) and "+mode=example_validation" in str(info.value)
    metrics.write_text(json.dumps({**content, "Number of examples": 5}))
    with pytest.raises(InputDataError, match='"Number of examples" is 5 but .* has 8 tasks'):
        validate_data(folder)


def test_data_check_refuses_conflict_files(tmp_path: Path) -> None:
    folder = copied_folder(tmp_path)
    (folder.path / "data" / "example_metrics_conflict.json").write_text("{}")
    with pytest.raises(GymError, match="conflict file.*example_metrics_conflict.json"):
        validate_data(folder)


def test_data_check_wants_five_rollouts_with_a_reward(tmp_path: Path) -> None:
    folder = copied_folder(tmp_path)
    rollouts = folder.path / "data" / "example_rollouts.jsonl"
    rows = rollouts.read_text().splitlines()
    rollouts.unlink()
    with pytest.raises(GymError, match="example_rollouts.jsonl not found") as info:
        validate_data(folder)
    assert "ng_collect_rollouts" in str(info.value)
    rollouts.write_text("\n".join(rows[:4]) + "\n")
    with pytest.raises(InputDataError, match="has 4 rollouts; an environment needs at least 5"):
        validate_data(folder)
    bad = json.loads(rows[1])
    bad["reward"] = None
    rollouts.write_text("\n".join([rows[0], json.dumps(bad), *rows[2:]]) + "\n")
    with pytest.raises(InputDataError) as line_info:
        validate_data(folder)
    assert line_info.value.line == 2 and "numeric `reward`" in str(line_info.value)


def test_tests_run_with_the_folder_then_the_root_on_the_path(tmp_path: Path) -> None:
    folder = ServerFolder("resources_servers", "env", tmp_path)
    folder.path.mkdir(parents=True)
    paths = pytest_environ(folder)["PYTHONPATH"].split(os.pathsep)
    assert paths[:2] == [str(folder.path), str(tmp_path)]
    assert needs_asyncio_auto(folder)  # no pytest config between the folder and the root
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    assert not needs_asyncio_auto(folder)
    assert not needs_asyncio_auto(parse_entrypoint("resources_servers/mcqa", root=REPO))
