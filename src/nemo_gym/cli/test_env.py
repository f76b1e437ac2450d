"""``ng_test``: run one server folder's tests as NeMo Gym runs them (and optionally check its
example data as NeMo Gym checks it).

The tests run from the folder itself, with the folder and the project root on ``PYTHONPATH``
(``scaffold.run_tests``), so ``from app import ...`` works as ``resources_servers.<name>.app``
does; ``+should_validate_data=true`` runs ``scaffold.validate.validate_data``.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.core.errors import GymError
from nemo_gym.scaffold.entrypoint import parse_entrypoint
from nemo_gym.scaffold.run_tests import PYTEST_NO_TESTS, run_folder_tests, shown_command
from nemo_gym.scaffold.validate import validate_data


class TestParams(BaseModel):
    """Run the tests of <server_type>/<name> with pytest from inside that folder (every test file
    in it; the folder is on PYTHONPATH, so `from app import ...` works); with
    +should_validate_data=true, also check a resources server's example data as NeMo Gym does:
    data/example.jsonl (at least 5 tasks, each accepted by verify), data/example_metrics.json
    (ng_prepare_data), no *conflict* files, data/example_rollouts.jsonl (at least 5 rollouts with
    a reward); agents and models have no data checks."""

    __test__ = False  # not a pytest test class, despite the name

    entrypoint: str = Field(description="The server folder, e.g. resources_servers/my_env.")
    should_validate_data: bool = Field(
        default=False, description="Also check the example data (resources servers only)."
    )
    pytest_args: str = Field(default="", description='Extra pytest arguments, e.g. "-k verify".')


@cli_entry
def main() -> int:
    params, _ = load_params(TestParams, "ng_test")
    folder = parse_entrypoint(params.entrypoint)
    if not folder.path.is_dir():
        raise GymError(f"no server folder {folder.path}")
    print(f"$ {shown_command(folder, params.pytest_args)}", flush=True)
    code = run_folder_tests(folder, params.pytest_args)
    if code == PYTEST_NO_TESTS:
        print(f"ng_test: no test found in {folder.relative}", file=sys.stderr)
        return 1
    if code != 0:
        print(f"ng_test: tests failed in {folder.relative} (pytest exit {code})", file=sys.stderr)
        return code
    if params.should_validate_data and folder.server_type != "resources_servers":
        print(f"ng_test: no data checks for {folder.server_type} (as in NeMo Gym)")
    elif params.should_validate_data:
        tasks, rollouts = validate_data(folder)
        print(
            f"ng_test: the data of {folder.relative} is valid: {tasks} example tasks, "
            f"example_metrics.json, {rollouts} example rollouts"
        )
    return 0
