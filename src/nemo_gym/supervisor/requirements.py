"""What a server folder's ``requirements.txt`` asks for, installed before the server starts.

NeMo Gym's convention: each environment and model server lists its own dependencies in its
folder. ``ng_run`` reads the file of every server it starts, checks each requirement against the
environment the servers run in (the project's ``.venv`` by default), and installs only what is
missing or the wrong version, with ``uv`` (its cache makes a repeat instant), or ``pip`` where
``uv`` is absent. A failure names the server, the file and the package. Lines that are pip
options (``-e``, ``-r``, ``--index-url``) and Gym itself (``nemo-gym``) are not installed: the
servers already run inside Gym. Used by ``startup.py``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from nemo_gym.core.errors import ConfigError

SELF = {"nemo-gym", "nemo_gym"}


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements of ``path`` that concern this environment.

    Raises:
        ConfigError: a line that is not a requirement (file and line named).
    """
    wanted: list[Requirement] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise ConfigError(f"{path}:{number}: not a requirement: {exc}") from None
        if requirement.name.lower() in SELF:
            continue
        if requirement.marker is None or requirement.marker.evaluate():
            wanted.append(requirement)
    return wanted


def unmet(requirements: Iterable[Requirement]) -> list[Requirement]:
    """Those not installed, or installed at a version outside their range."""
    missing = []
    for requirement in requirements:
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if requirement.url is None and not requirement.specifier.contains(
            version, prereleases=True
        ):
            missing.append(requirement)
    return missing


def install_command(requirements: list[Requirement]) -> list[str]:
    specs = [str(r) for r in requirements]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv", "pip", "install", "--python", sys.executable, *specs]
    return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *specs]


def ensure_requirements(folders: dict[str, Path], write: Callable[[str], None]) -> None:
    """Install what the servers' folders (server name -> folder) need and the env lacks.

    Raises:
        ConfigError: a requirements file is malformed, or installing failed (names the server
            and what could not be installed, with the installer's last lines).
    """
    done: set[Path] = set()
    for name, folder in folders.items():
        path = folder / "requirements.txt"
        if path in done or not path.is_file():
            continue
        done.add(path)
        missing = unmet(read_requirements(path))
        if not missing:
            continue
        listed = ", ".join(str(r) for r in missing)
        write(f"Installing what server {name!r} needs ({path}): {listed}\n")
        result = subprocess.run(
            install_command(missing), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
            raise ConfigError(
                f"server {name!r} needs {listed} ({path}), and installing it failed:\n{tail}"
            )
