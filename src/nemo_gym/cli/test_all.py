"""``ng_test_all``: ``ng_test`` with data validation over every server folder, as NeMo Gym's.

The folders are ``resources_servers/*``, ``responses_api_agents/*`` and
``responses_api_models/*`` under the project root that have a ``README.md``; each one's tests
run from inside it (``scaffold.run_tests``) and each resources server's data is checked
(``scaffold.validate.validate_data``). pytest's exit code sorts a folder into passed (0),
failed (1, or any other code, which is named) and missing (5: no test found). The summary lists
every group with counts and percentages; the exit code is 1 when anything failed, is missing or
has invalid data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.instances import SERVER_TYPES
from nemo_gym.core.errors import GymError
from nemo_gym.scaffold.entrypoint import ServerFolder
from nemo_gym.scaffold.run_tests import (
    PYTEST_NO_TESTS,
    PYTEST_PASSED,
    run_folder_tests,
    shown_command,
)
from nemo_gym.scaffold.validate import validate_data


class TestAllParams(BaseModel):
    """Run ng_test +should_validate_data=true for every server folder with a README.md
    (resources_servers/*, responses_api_agents/*, responses_api_models/*) and print a summary;
    exits 1 when any tests fail or are missing or any resources server's data is invalid."""

    __test__ = False  # not a pytest test class, despite the name

    fail_on_total_and_test_mismatch: bool = Field(
        default=False, description="Also fail when some server folder has no README.md."
    )
    pytest_args: str = Field(default="", description="Extra pytest arguments for every folder.")


@dataclass
class Outcome:
    candidates: list[ServerFolder]
    tested: list[ServerFolder]
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid_data: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.missing or self.invalid_data)


def server_folders(root: Path) -> list[ServerFolder]:
    """Every folder under the server-type folders (``__pycache__`` and hidden ones aside)."""
    found = []
    for server_type in SERVER_TYPES:
        for path in sorted((root / server_type).glob("*")):
            if path.is_dir() and "pycache" not in path.name and not path.name.startswith("."):
                found.append(ServerFolder(server_type, path.name, root))
    return found


def run_all(root: Path, pytest_args: str = "") -> Outcome:
    candidates = server_folders(root)
    outcome = Outcome(candidates, [f for f in candidates if (f.path / "README.md").is_file()])
    for folder in outcome.tested:
        print(f"\n### {folder.relative}\n$ {shown_command(folder, pytest_args)}", flush=True)
        code = run_folder_tests(folder, pytest_args)
        if code == PYTEST_PASSED:
            outcome.passed.append(folder.relative)
        elif code == PYTEST_NO_TESTS:
            outcome.missing.append(folder.relative)
        else:
            outcome.failed.append(f"{folder.relative} (pytest exit {code})")
        if folder.server_type != "resources_servers":
            continue
        try:
            validate_data(folder)
        except GymError as exc:
            print(f"data validation failed: {exc}", flush=True)
            outcome.invalid_data.append(folder.relative)
    return outcome


def _group(title: str, items: list[str], total: int) -> str:
    share = 100 * len(items) / total if total else 0.0
    return f"{title} {len(items)} / {total} ({share:.2f}%):" + "".join(f"\n- {i}" for i in items)


def summary(outcome: Outcome) -> str:
    total = len(outcome.tested)
    parts = [
        f"Found {len(outcome.candidates)} server folders; {total} with a README.md tested.",
        _group("Tests passed", outcome.passed, total),
        _group("Tests failed", outcome.failed, total),
        _group("Tests missing", outcome.missing, total),
        _group("Data validation failed", outcome.invalid_data, total),
    ]
    rerun = [*outcome.failed, *outcome.missing]
    if rerun:
        parts.append(f"Rerun one with: ng_test +entrypoint={rerun[0].split(' ')[0]}")
    if outcome.invalid_data:
        first = outcome.invalid_data[0]
        parts.append(f"Recheck its data: ng_test +entrypoint={first} +should_validate_data=true")
    return "\n\n".join(parts)


@cli_entry
def main() -> int:
    params, loaded = load_params(TestAllParams, "ng_test_all")
    outcome = run_all(loaded.root, params.pytest_args)
    print("\n" + summary(outcome))
    if params.fail_on_total_and_test_mismatch and len(outcome.tested) != len(outcome.candidates):
        untested = [f.relative for f in outcome.candidates if f not in outcome.tested]
        print(f"Server folders without a README.md (not tested): {', '.join(untested)}")
        return 1
    return 0 if outcome.ok else 1


if __name__ == "__main__":  # python -m nemo_gym.cli.test_all
    main()
