"""A server with ``isolated_venv: true`` runs in its own environment, with its own versions.

A tiny resources server folder pins ``iniconfig==1.1.1`` (pure Python, on PyPI; the project's
environment has 2.x through pytest) and reports the version and location it imports. ng_run
creates ``<folder>/.venv`` with Gym's core and that pin, starts the server with its interpreter,
and reuses the environment on the next start; the project's environment keeps its own version.
A requirement that cannot be installed is an error naming the server and the package.
"""

from __future__ import annotations

import importlib.metadata
import json
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import BIN, Proc, free_port

pytestmark = pytest.mark.e2e

APP = '''
import importlib.metadata
import sys

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)


class Config(BaseResourcesServerConfig):
    pass


class Server(SimpleResourcesServer):
    config: Config

    def setup_webserver(self):
        app = super().setup_webserver()
        app.get("/own_version")(self.own_version)
        return app

    async def own_version(self) -> dict:
        import iniconfig

        return {
            "version": importlib.metadata.version("iniconfig"),
            "file": iniconfig.__file__,
            "prefix": sys.prefix,
        }

    async def verify(self, body: BaseVerifyRequest) -> BaseVerifyResponse:
        return BaseVerifyResponse(**body.model_dump(), reward=1.0)


if __name__ == "__main__":
    Server.run_webserver()
'''


def make_root(tmp_path: Path, requirement: str) -> Path:
    folder = tmp_path / "resources_servers" / "pinned"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(APP)
    (folder / "requirements.txt").write_text(requirement + "\n")
    (tmp_path / "pinned.yaml").write_text(
        "pinned:\n  resources_servers:\n    pinned:\n      entrypoint: app.py\n"
        "      domain: other\n      isolated_venv: true\n"
    )
    return tmp_path


def start(root: Path) -> tuple[Proc, int]:
    port = free_port()
    proc = Proc(
        [str(BIN / "ng_run"), "+config_paths=[pinned.yaml]", f"+head_server.port={port}"],
        env={"NEMO_GYM_ROOT": str(root)},
    )
    return proc, port


def own_version(head_port: int) -> dict[str, str]:
    url = f"http://127.0.0.1:{head_port}/server_instances"
    with urllib.request.urlopen(url, timeout=10) as resp:
        (server,) = [r for r in json.loads(resp.read()) if r["name"] == "pinned"]
    with urllib.request.urlopen(f"{server['url']}/own_version", timeout=10) as resp:
        data: dict[str, str] = json.loads(resp.read())
    return data


def test_an_isolated_server_sees_its_own_package_versions(tmp_path: Path) -> None:
    root = make_root(tmp_path, "iniconfig==1.1.1")
    venv = root / "resources_servers/pinned/.venv"
    proc, port = start(root)
    try:
        proc.wait_line("servers healthy in", timeout=300)
        seen = own_version(port)
    finally:
        proc.stop()
    assert proc.popen.returncode == 0, proc.text
    assert f"Creating the virtual environment of server 'pinned' in {venv}" in proc.text
    assert seen["version"] == "1.1.1"
    assert Path(seen["file"]).is_relative_to(venv) and Path(seen["prefix"]) == venv
    assert importlib.metadata.version("iniconfig") != "1.1.1"  # ng_run's own is untouched

    again, port = start(root)  # the environment is reused: nothing is created or installed
    try:
        again.wait_line("servers healthy in", timeout=120)
        assert own_version(port)["version"] == "1.1.1"
    finally:
        again.stop()
    assert "Creating the virtual environment" not in again.text


def test_a_requirement_that_cannot_be_installed_names_the_server_and_package(
    tmp_path: Path,
) -> None:
    root = make_root(tmp_path, "iniconfig==0.0.0.999")  # no such version
    proc, _ = start(root)
    assert proc.wait(300) != 0
    assert "server 'pinned' needs iniconfig==0.0.0.999" in proc.text, proc.text
