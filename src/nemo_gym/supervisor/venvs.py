"""Opt-in virtual environments per server, for environments whose dependencies conflict.

By default every server runs in the environment ``ng_run`` runs in (the project's ``.venv``),
with its folder's ``requirements.txt`` installed there (``requirements.py``). A server whose
config section says ``isolated_venv: true`` runs instead in ``<server folder>/.venv``, which
``ng_run`` creates with ``uv`` (``python -m venv`` and pip where ``uv`` is absent) and fills
with:

1. Gym's core: its dependencies, pinned to the versions installed here (so ``uv``'s cache
   serves them and the server runs the stack the rest of the run runs); Gym's own package
   comes from its source folder on ``PYTHONPATH`` (a checkout: ``src/``);
2. the folder's ``requirements.txt``, installed after the core, so that it may pin other
   versions of anything, core dependencies included.

The environment is reused while a marker in it (a hash of the Python version, the core pins
and the requirements file) is unchanged, so a repeat start costs nothing. A failure names the
server, the environment and the packages, with the installer's last lines. ``launcher.py``
starts such a server with the environment's interpreter (always as ``python app.py``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from nemo_gym.core.errors import ConfigError
from nemo_gym.supervisor.requirements import read_requirements

#: The instance config key that asks for a server's own environment.
VENV_KEY = "isolated_venv"
MARKER = ".gym-venv"


def wants_venv(settings: Mapping[str, Any]) -> bool:
    """Whether an instance's settings ask for its own environment (``isolated_venv: true``)."""
    return settings.get(VENV_KEY) in (True, "true", "True", 1)


def gym_source() -> Path:
    """The folder holding the ``nemo_gym`` package, put on an isolated server's path.

    Raises:
        ConfigError: Gym is installed among other packages (site-packages), not from a source
            folder: putting that folder on the path would defeat the isolation.
    """
    folder = Path(__file__).resolve().parents[2]  # <folder>/nemo_gym/supervisor/venvs.py
    if folder.name in ("site-packages", "dist-packages"):
        raise ConfigError(
            f"{VENV_KEY}: needs Gym from a source checkout (it is installed in {folder})"
        )
    return folder


def core_pins(dist: str = "nemo-gym") -> list[str]:
    """``name==version`` of every package Gym's core needs, recursively (extras that are asked
    for included), as installed here."""
    pins: dict[str, str] = {}
    expanded: set[tuple[str, str]] = set()  # (package, extra); "" is the package itself
    todo = [Requirement(r) for r in importlib.metadata.requires(dist) or ()]
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = requirement.name.lower().replace("_", "-")
        try:
            pins[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) in expanded:
                continue
            expanded.add((name, extra))
            for raw in importlib.metadata.requires(name) or ():
                sub = Requirement(raw)
                if sub.marker is None or sub.marker.evaluate({"extra": extra}):
                    sub.marker = None  # decided here, for this extra
                    todo.append(sub)
    return sorted(f"{name}=={version}" for name, version in pins.items())


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise ConfigError(f"{what} failed:\n{tail}")


def _install(venv: Path, args: list[str], what: str) -> None:
    if importlib.util.find_spec("uv") is not None:
        uv = [sys.executable, "-m", "uv", "pip", "install", "--python", str(_python(venv))]
        _run([*uv, *args], what)
    else:
        _run([str(_python(venv)), "-m", "pip", "install", "-q", *args], what)


def ensure_venv(name: str, folder: Path, write: Callable[[str], None]) -> Path:
    """Create or reuse ``folder/.venv`` for server ``name``; return its interpreter.

    Raises:
        ConfigError: naming the server, the environment and what could not be installed.
    """
    venv = folder / ".venv"
    requirements = folder / "requirements.txt"
    wanted = read_requirements(requirements) if requirements.is_file() else []
    pins = core_pins()
    key = hashlib.sha256(
        "\n".join(
            [sys.version, *pins, requirements.read_text() if requirements.is_file() else ""]
        ).encode()
    ).hexdigest()
    marker = venv / MARKER
    if _python(venv).exists() and marker.is_file() and marker.read_text() == key:
        return _python(venv)
    write(f"Creating the virtual environment of server {name!r} in {venv}\n")
    marker.unlink(missing_ok=True)  # a half-built environment is never taken as ready
    if importlib.util.find_spec("uv") is not None:
        create = [sys.executable, "-m", "uv", "venv", "--quiet", "--allow-existing"]
        _run([*create, "--python", sys.executable, str(venv)], f"server {name!r}: uv venv")
    else:
        _run([sys.executable, "-m", "venv", str(venv)], f"server {name!r}: python -m venv")
    _install(venv, pins, f"server {name!r}: installing Gym's core into {venv}")
    if wanted:
        listed = ", ".join(str(r) for r in wanted)
        write(f"Installing what server {name!r} needs ({requirements}) into {venv}: {listed}\n")
        _install(
            venv,
            [str(r) for r in wanted],
            f"server {name!r} needs {listed} ({requirements}), and installing it into {venv}",
        )
    marker.write_text(key)
    return _python(venv)
