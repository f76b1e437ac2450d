"""A server folder's requirements.txt: read, checked against the environment, installed.

The install test is real: it builds a one-module wheel in a temporary folder, lets
``ensure_requirements`` install it into this environment with uv, imports it in a fresh
interpreter, and uninstalls it again.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from nemo_gym.core.errors import ConfigError
from nemo_gym.supervisor.requirements import ensure_requirements, read_requirements, unmet

PROBE = "gym-probe-dep"


def wheel(folder: Path) -> Path:
    """A minimal, valid wheel of ``gym_probe_dep`` 0.1 (VALUE = 42)."""
    files = {
        "gym_probe_dep/__init__.py": b"VALUE = 42\n",
        "gym_probe_dep-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: gym-probe-dep\n"
        b"Version: 0.1\n",
        "gym_probe_dep-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: gym-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("gym_probe_dep-0.1.dist-info/RECORD,,")
    path = folder / "gym_probe_dep-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("gym_probe_dep-0.1.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture
def uninstall_probe() -> Iterator[None]:
    yield
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "uninstall", "--python", sys.executable, PROBE],
        capture_output=True,
        check=False,
    )


def test_lines_that_are_options_or_gym_itself_are_not_requirements(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(
        "-e nemo-gym @ ../../\n# a comment\norjson>=3  # inline\nnot-on-this-os; "
        "sys_platform == 'nonexistent'\n--index-url https://example.invalid\n"
    )
    assert [str(r) for r in read_requirements(path)] == ["orjson>=3"]
    path.write_text("orjson>=3\nthis is not a requirement\n")
    with pytest.raises(ConfigError, match=r"requirements.txt:2: not a requirement"):
        read_requirements(path)


def test_installed_and_in_range_is_met() -> None:
    assert unmet([Requirement("orjson>=3"), Requirement("pydantic>=2")]) == []
    assert [str(r) for r in unmet([Requirement("orjson<1"), Requirement(PROBE)])] == [
        "orjson<1",
        PROBE,
    ]


def test_what_a_server_lacks_is_installed_once(tmp_path: Path, uninstall_probe: None) -> None:
    folder = tmp_path / "probe_env"
    folder.mkdir()
    (folder / "requirements.txt").write_text(f"{PROBE} @ {wheel(tmp_path).as_uri()}\n")
    said: list[str] = []
    ensure_requirements({"probe": folder}, said.append)
    assert said == [
        f"Installing what server 'probe' needs ({folder}/requirements.txt): {PROBE}"
        f" @ {wheel(tmp_path).as_uri()}\n"
    ]
    imported = subprocess.run(
        [sys.executable, "-c", "import gym_probe_dep; print(gym_probe_dep.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "42"
    said.clear()
    ensure_requirements({"probe": folder}, said.append)  # met now: nothing to do
    assert said == []


def test_an_install_that_fails_names_the_server_and_the_package(tmp_path: Path) -> None:
    folder = tmp_path / "broken_env"
    folder.mkdir()
    missing = (tmp_path / "gym_absent-0.1-py3-none-any.whl").as_uri()
    (folder / "requirements.txt").write_text(f"gym-absent @ {missing}\n")
    with pytest.raises(ConfigError, match=r"server 'broken' needs gym-absent @ .* and installing"):
        ensure_requirements({"broken": folder}, lambda _: None)
