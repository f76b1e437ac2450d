"""Running a server folder's tests as NeMo Gym runs them.

pytest runs in the folder itself with no path arguments, so it collects every test file under
it, and with the folder first on ``PYTHONPATH`` (then the project root), so a test can do
``from app import MyServer`` or import a helper module beside ``app.py`` as NeMo Gym's do, and
``resources_servers.<name>.app`` imports as under ``ng_run``. The interpreter is this one (Gym
does not make a virtualenv per server). When no pytest configuration file lies between the folder
and the project root, ``asyncio_mode=auto`` is set, as NeMo Gym's repository sets it for every
server's tests. Used by ``ng_test`` (``cli.test_env``) and ``ng_test_all`` (``cli.test_all``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from nemo_gym.scaffold.entrypoint import ServerFolder

#: pytest's exit codes that ``ng_test_all`` sorts on.
PYTEST_PASSED = 0
PYTEST_FAILED = 1
PYTEST_NO_TESTS = 5
PYTEST_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def _has_pytest_config(directory: Path) -> bool:
    for name in PYTEST_CONFIG_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if name == "pyproject.toml" and "[tool.pytest" not in path.read_text():
            continue
        if name == "setup.cfg" and "[tool:pytest]" not in path.read_text():
            continue
        return True
    return False


def needs_asyncio_auto(folder: ServerFolder) -> bool:
    """No pytest config from the folder up to the project root (both included)."""
    directory = folder.path
    while True:
        if _has_pytest_config(directory):
            return False
        if directory == folder.root or directory.parent == directory:
            return True
        directory = directory.parent


def pytest_command(folder: ServerFolder, pytest_args: str = "") -> list[str]:
    command = [sys.executable, "-m", "pytest"]
    if needs_asyncio_auto(folder):
        command += ["-o", "asyncio_mode=auto"]
    return command + shlex.split(pytest_args)


def pytest_environ(folder: ServerFolder) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(folder.path), str(folder.root), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def shown_command(folder: ServerFolder, pytest_args: str = "") -> str:
    """The command as a user would type it (for the commands' output)."""
    args = pytest_command(folder, pytest_args)[3:]
    return f"cd {folder.relative} && {shlex.join(['pytest', *args])}"


def run_folder_tests(folder: ServerFolder, pytest_args: str = "") -> int:
    """Run the folder's tests (output to this process's); return pytest's exit code."""
    command = pytest_command(folder, pytest_args)
    return subprocess.call(command, cwd=folder.path, env=pytest_environ(folder))
