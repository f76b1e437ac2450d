"""Which servers make ``ng_run`` start a Ray cluster without ``ray_head_node_address``."""

from __future__ import annotations

from pathlib import Path

from nemo_gym.config.placement import servers_importing_ray
from tests.helpers import REPO


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_only_server_code_that_imports_ray_counts(tmp_path: Path) -> None:
    write(tmp_path / "top/app.py", "import os\nimport ray\n")
    write(tmp_path / "nested/app.py", "import os\n")
    write(tmp_path / "nested/utils/work.py", "def f():\n    from ray import remote\n")
    write(tmp_path / "tests_only/app.py", "import json\n")
    write(tmp_path / "tests_only/tests/test_app.py", "import ray\n")
    write(tmp_path / "tests_only/test_more.py", "import ray\n")
    write(tmp_path / "lookalike/app.py", "import rayleigh\n# import ray in a comment? no\n")
    folders = {name: tmp_path / name for name in ("top", "nested", "tests_only", "lookalike")}
    assert servers_importing_ray(folders) == ["top", "nested"]


def test_no_shipped_server_starts_ray() -> None:
    folders = {
        f"{kind}/{path.name}": path
        for kind in ("resources_servers", "responses_api_agents", "responses_api_models")
        for path in sorted((REPO / kind).iterdir())
        if path.is_dir() and (path / "app.py").exists()
    }
    assert len(folders) > 10
    assert servers_importing_ray(folders) == []
