"""ng_init_resources_server and ng_test parts: entrypoint checks, templates, data checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nemo_gym.core.errors import ConfigError, GymError, InputDataError
from nemo_gym.scaffold.create import create_environment, title_case
from nemo_gym.scaffold.entrypoint import ServerFolder, parse_entrypoint
from nemo_gym.scaffold.validate import validate_example_data
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
    assert validate_example_data(folder) >= 5
    assert (folder.path / "configs" / f"{name}.yaml").is_file()
    assert (folder.path / "README.md").is_file() and (folder.path / "tests").is_dir()
