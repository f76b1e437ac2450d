"""The opt-in per-server environment: who asks for one, and the core pinned into it."""

from __future__ import annotations

import importlib.metadata

from nemo_gym.supervisor.venvs import core_pins, gym_source, wants_venv


def test_only_a_true_isolated_venv_asks_for_an_environment() -> None:
    assert wants_venv({"isolated_venv": True}) and wants_venv({"isolated_venv": "true"})
    assert not wants_venv({}) and not wants_venv({"isolated_venv": False})


def test_the_core_is_pinned_to_the_versions_installed_here_with_its_dependencies() -> None:
    pins = core_pins()
    for name in ("pydantic", "fastapi", "aiohttp", "pydantic-core", "starlette", "watchfiles"):
        # direct (pydantic, fastapi), transitive (pydantic-core) and via an extra (uvicorn's
        # [standard] brings watchfiles): each at this environment's version
        assert f"{name}=={importlib.metadata.version(name)}" in pins
    names = {pin.split("==")[0] for pin in pins}
    assert "pytest" not in names and "torch" not in names  # extras (dev, train) are not core
    assert "nemo-gym" not in names  # Gym itself comes from its source folder


def test_gym_comes_from_its_source_folder() -> None:
    assert (gym_source() / "nemo_gym" / "__init__.py").is_file()
