"""Ray costs nothing when unused (issue 13 item 5): the default path never imports it.

Each check runs in a fresh interpreter, imports what ``ng_run``, its servers and
``ng_collect_rollouts`` import on the default path (no ``ray_head_node_address``), and lists the
``ray`` modules loaded. Ray itself is installed in the dev environment, so a stray ``import ray``
anywhere on that path would show up here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DEFAULT_PATH = {
    "ng_run": ["nemo_gym.cli.run", "nemo_gym.supervisor.supervisor", "nemo_gym.head.app"],
    "ng_collect_rollouts": ["nemo_gym.cli.collect", "nemo_gym.rollouts.collect"],
    "the quickstart's servers": [
        "nemo_gym.server.launch",
        "responses_api_agents.simple_agent.app",
        "responses_api_models.openai_model.app",
        "resources_servers.example_single_tool_call.app",
    ],
}

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))))
"""


def loaded_ray_modules(modules: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert isinstance(result, list)
    return [str(m) for m in result]


def test_the_probe_sees_ray_when_it_is_imported() -> None:
    """The check can fail: importing ray itself is seen (skipped where ray is not installed)."""
    pytest.importorskip("ray")
    assert "ray" in loaded_ray_modules(["ray"])


@pytest.mark.parametrize("what", sorted(DEFAULT_PATH))
def test_the_default_path_does_not_import_ray(what: str) -> None:
    assert loaded_ray_modules(DEFAULT_PATH[what]) == []
