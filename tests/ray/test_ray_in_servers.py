"""A server that uses ``ray.remote`` joins the cluster ``ng_run`` started (``auto``), and
stopping ``ng_run`` stops that cluster: no Ray process is left.

The environment (``ray_env``) runs as an ordinary ``ng_run`` process (no replicas); its
``verify`` runs a Ray task. The rows are scored by that task, the server reports the cluster it
joined, and it is the one ``ng_run`` announced.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import urllib.request
from pathlib import Path

import pytest
import yaml

from nemo_gym.ray_support.cluster import session_members
from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed (the `ray` extra); this test starts a real Ray cluster",
    ),
]
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"


def _ray_start_pids() -> set[int]:
    """PIDs of every `ray start` process of a cluster ng_run started (their cmdline names
    ng_run's temporary folder)."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start" in cmdline and any(b"--temp-dir=/tmp/ng-ray-" in a for a in cmdline):
            found.add(int(entry.name))
    return found


@pytest.mark.parametrize("address", ["auto", None], ids=["auto", "not-configured"])
def test_a_server_using_ray_joins_the_cluster_ng_run_started(
    tmp_path: Path, address: str | None
) -> None:
    """With ``ray_head_node_address: auto``, or with no address at all: the server's code
    imports ray, so ng_run starts a local cluster for it (NeMo Gym always has one)."""
    root = tmp_path / "root"
    (root / "resources_servers").mkdir(parents=True)
    shutil.copytree(Path(__file__).parent / "ray_env", root / "resources_servers/ray_env")
    for kind in ("responses_api_agents", "responses_api_models"):
        (root / kind).symlink_to(REPO / kind)
    config: dict[str, object] = {
        "ray_env": {"resources_servers": {"ray_env": {"entrypoint": "app.py"}}},
        "ray_agent": {
            "responses_api_agents": {
                "simple_agent": {
                    "entrypoint": "app.py",
                    "resources_server": {"type": "resources_servers", "name": "ray_env"},
                    "model_server": {"type": "responses_api_models", "name": "policy_model"},
                }
            }
        },
    }
    if address is not None:
        config["ray_head_node_address"] = address
    (root / "ray.yaml").write_text(yaml.safe_dump(config))
    before = _ray_start_pids()
    port = free_port()
    with fake_openai_process() as base_url:
        run = Proc(
            [
                str(BIN / "ng_run"),
                "+config_paths=[responses_api_models/openai_model/configs/openai_model.yaml,"
                "ray.yaml]",
                f"+head_server.port={port}",
                f"+policy_base_url={base_url}",
                "+policy_api_key=sk-test",
                "+policy_model_name=fake-model",
                "+graceful_shutdown_s=5",
            ],
            env={"NEMO_GYM_ROOT": str(root)},
            cwd=root,
        )
        try:
            started_address = run.wait_line("Ray cluster: ", timeout=120).split()[2]
            if address is None:
                assert "ray_env imports ray: starting a local Ray cluster for it" in run.text
            run.wait_line("servers healthy in", timeout=120)
            (started,) = _ray_start_pids() - before
            out = tmp_path / "out.jsonl"
            collect = Proc(
                [
                    str(BIN / "ng_collect_rollouts"),
                    "+agent_name=ray_agent",
                    f"+input_jsonl_fpath={DATA}",
                    f"+output_jsonl_fpath={out}",
                    "+limit=2",
                    f"+head_server.port={port}",
                ]
            )
            assert collect.wait(180) == 0, collect.text
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            assert [r["reward"] for r in rows] == [1.0, 1.0]  # scored by a Ray task
            rows_by_name = json.loads(
                urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/server_instances", timeout=10
                ).read()
            )
            env_url = next(r["url"] for r in rows_by_name if r["name"] == "ray_env")
            info = json.loads(urllib.request.urlopen(f"{env_url}/ray_info", timeout=10).read())
            # the cluster ng_run started, not a new one
            assert info["gcs_address"] == started_address
            assert len(info["task_pids"]) == 2 and info["server_pid"] not in info["task_pids"]
            # the task ran in a worker of that cluster: a process of its `ray start` session
            assert all(pid in session_members(started) for pid in info["task_pids"])
        finally:
            run.stop()
    assert run.popen.returncode == 0, run.text[-3000:]
    assert session_members(started) == []  # nothing of the cluster is left
    assert _ray_start_pids() - before == set()
