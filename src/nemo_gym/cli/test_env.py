"""``ng_test``: run one server folder's tests (and optionally check its example data).

Tests run with this interpreter (Gym does not make a virtualenv per server), from the project
root, so ``resources_servers.<name>.app`` imports as it does under ``ng_run``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.core.errors import GymError
from nemo_gym.scaffold.entrypoint import parse_entrypoint
from nemo_gym.scaffold.validate import validate_example_data

PYTEST_NO_TESTS = 5


class TestParams(BaseModel):
    """Run the tests in <server_type>/<name>/tests with pytest; with +should_validate_data=true,
    also check that data/example.jsonl has at least 5 tasks that its verify accepts."""

    __test__ = False  # not a pytest test class, despite the name

    entrypoint: str = Field(description="The server folder, e.g. resources_servers/my_env.")
    should_validate_data: bool = Field(
        default=False, description="Also check data/example.jsonl (resources servers only)."
    )
    pytest_args: str = Field(default="", description='Extra pytest arguments, e.g. "-k verify".')


@cli_entry
def main() -> int:
    params, _ = load_params(TestParams, "ng_test")
    folder = parse_entrypoint(params.entrypoint)
    if not folder.path.is_dir():
        raise GymError(f"no server folder {folder.path}")
    tests = folder.path / "tests"
    if not tests.is_dir():
        raise GymError(f"{folder.relative} has no tests/ folder")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder.root), env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"{folder.relative}/tests",
        *shlex.split(params.pytest_args),
    ]
    print(f"$ {shlex.join(command[2:])}", flush=True)
    code = subprocess.call(command, cwd=folder.root, env=env)
    if code == PYTEST_NO_TESTS:
        print(f"ng_test: no test ran in {folder.relative}/tests", file=sys.stderr)
        return 1
    if code != 0:
        print(f"ng_test: tests failed in {folder.relative} (pytest exit {code})", file=sys.stderr)
        return code
    if params.should_validate_data:
        if folder.server_type != "resources_servers":
            raise GymError("+should_validate_data=true applies to resources_servers only")
        count = validate_example_data(folder)
        print(f"ng_test: {folder.relative}/data/example.jsonl: {count} tasks, all valid")
    return 0
