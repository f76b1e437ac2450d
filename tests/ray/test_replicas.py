"""Server replicas on a real two-node Ray cluster on this machine.

Two raylets on 127.0.0.1 (Ray's ``cluster_utils.Cluster``, run by ``two_nodes.py``): the head
node offers ``model_node``, the second ``cpu_node``. ``ng_run`` joins the cluster and places the
model server on the model node and two replicas each of the agent and of a counting resources
server (``counting_env``, which records which session called which route) on the CPU node. A
collection spreads its rollouts over both resources replicas while every call of one rollout
stays on one replica; killing a replica mid-run fails only the rollouts it held, Ray restarts
it, it registers again, and ``+resume=true`` completes every row. At the end no process of the
cluster or of ``ng_run`` is left.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed (the `ray` extra); these tests start a real Ray cluster",
    ),
]
AGENT = "counting_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


class TwoNodes:
    """The cluster process of ``two_nodes.py`` (see there), in a session of its own."""

    def __init__(self) -> None:
        self.env = {
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
        }
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.ray.two_nodes"],
            cwd=REPO,
            env={**os.environ, **self.env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.address = self.wait("ADDRESS ").split()[1]
        self.env["RAY_ADDRESS"] = self.address
        self.raylets = {"head": int(self.wait("NODE head").split()[2])}
        self.raylets["cpu"] = int(self.wait("NODE cpu").split()[2])
        self.wait("READY")

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, prefix: str, after: int = 0, timeout: float = 120) -> str:
        def found() -> str | None:
            hits = [x for x in self.lines[after:] if x.startswith(prefix)]
            assert hits or self.popen.poll() is None, "\n".join(self.lines[-30:])
            return hits[-1] if hits else None

        return str(wait_for(found, timeout, f"{prefix!r} from the cluster", interval=0.1))

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def shutdown(self) -> list[int]:
        """Stop the cluster; the pids of its session still running after it exited."""
        from nemo_gym.ray_support.cluster import kill_session, session_members

        if self.popen.poll() is None:
            self.send("quit")
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        # Ray's idle workers exit shortly after their raylet (cluster_utils does not wait for
        # them): the session must empty within a deadline; whatever is still there is reported.
        deadline = time.monotonic() + 20.0
        while True:
            left = [p for p in session_members(self.popen.pid) if p != self.popen.pid]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        kill_session(self.popen.pid)
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                pipe.close()
        return left


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _replicas(port: int) -> dict[tuple[str, int], dict[str, Any]]:
    rows = _get(f"http://127.0.0.1:{port}/replicas")
    return {(r["instance"], r["replica"]): r for r in rows}


def _config(address: str) -> dict[str, Any]:
    cpu = {"num_cpus": 0.5, "resources": {"cpu_node": 1}}
    counting = {"entrypoint": "app.py", "num_replicas": 2, "ray_actor_options": cpu}
    return {
        "ray_head_node_address": address,
        "counting": {
            "resources_servers": {"counting_env": counting}
        },
        AGENT: {
            "responses_api_agents": {
                "simple_agent": {
                    "entrypoint": "app.py",
                    "resources_server": {"type": "resources_servers", "name": "counting"},
                    "model_server": {"type": "responses_api_models", "name": "policy_model"},
                    "max_steps": 4,
                    "num_replicas": 2,
                    "ray_actor_options": cpu,
                }
            }
        },
        "policy_model": {
            "responses_api_models": {
                "openai_model": {
                    "num_replicas": 1,
                    "ray_actor_options": {"num_cpus": 0, "resources": {"model_node": 1}},
                }
            }
        },
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[TwoNodes]:
    nodes = TwoNodes()
    try:
        yield nodes
    finally:
        left = nodes.shutdown()
    assert left == []  # every Ray process of the cluster is gone


@pytest.fixture(scope="module")
def run(cluster: TwoNodes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, int]]:
    """ng_run joined to the cluster, on a project root holding counting_env."""
    root = tmp_path_factory.mktemp("root")
    (root / "resources_servers").mkdir()
    shutil.copytree(Path(__file__).parent / "counting_env", root / "resources_servers/counting_env")
    for kind in ("responses_api_agents", "responses_api_models"):
        (root / kind).symlink_to(REPO / kind)
    (root / "scale.yaml").write_text(yaml.safe_dump(_config(cluster.address)))
    port = free_port()
    with fake_openai_process() as base_url:
        proc = Proc(
            [
                str(BIN / "ng_run"),
                "+config_paths=[responses_api_models/openai_model/configs/openai_model.yaml,"
                "scale.yaml]",
                f"+head_server.port={port}",
                f"+policy_base_url={base_url}",
                "+policy_api_key=sk-test",
                "+policy_model_name=fake-model",
                "+graceful_shutdown_s=5",
            ],
            env={"NEMO_GYM_ROOT": str(root), **cluster.env},
            cwd=root,
        )
        try:
            proc.wait_line("servers healthy in", timeout=150)
            yield proc, port
        finally:
            proc.stop()
    assert proc.popen.returncode == 0, proc.text[-3000:]
    assert "All servers stopped." in proc.text


def _collect(port: int, out: Path, data: Path, repeats: int, *extra: str) -> Proc:
    return Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={out}",
            f"+num_repeats={repeats}",
            "+num_samples_in_parallel=4",
            f"+head_server.port={port}",
            *extra,
        ]
    )


def test_replicas_land_where_their_resources_say(
    run: tuple[Proc, int], cluster: TwoNodes
) -> None:
    proc, port = run
    table = _replicas(port)
    assert set(table) == {
        (AGENT, 0), (AGENT, 1), ("counting", 0), ("counting", 1), ("policy_model", 0)
    }  # fmt: skip
    head, cpu = cluster.raylets["head"], cluster.raylets["cpu"]
    # a replica's actor is a worker process of the raylet of the node it runs on
    assert {k: _ppid(r["actor_pid"]) for k, r in table.items()} == {
        (AGENT, 0): cpu,
        (AGENT, 1): cpu,
        ("counting", 0): cpu,
        ("counting", 1): cpu,
        ("policy_model", 0): head,
    }
    assert table[("counting", 0)]["node_id"] != table[("policy_model", 0)]["node_id"]
    for row in table.values():
        assert _get(f"{row['url']}/health") is not None
    status = Proc([str(BIN / "ng_status"), f"+head_server.port={port}"])
    assert status.wait(30) == 0, status.text
    assert "counting replica 1 (resources_servers/counting_env)" in status.text
    assert status.text.count("node: 127.0.0.1 (Ray node ") == 5
    assert "5 servers found (5 healthy, 0 unhealthy)" in status.text


def test_rollouts_use_every_replica_and_stay_on_one_per_rollout(
    run: tuple[Proc, int], tmp_path: Path
) -> None:
    _, port = run
    before = {
        i: set(_get(f"{_replicas(port)[('counting', i)]['url']}/seen")["calls"]) for i in (0, 1)
    }
    out = tmp_path / "out.jsonl"
    collect = _collect(port, out, DATA, 3)
    assert collect.wait(120) == 0, collect.text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 24 and all(r["_ng_status"] == "completed" for r in rows)
    seen = {}
    for i in (0, 1):
        calls = _get(f"{_replicas(port)[('counting', i)]['url']}/seen")["calls"]
        seen[i] = {s: routes for s, routes in calls.items() if s not in before[i]}
    # every rollout: seed, at least one tool call and verify, all on one replica
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) + len(seen[1]) == 24
    assert len(seen[0]) >= 1 and len(seen[1]) >= 1
    for routes in [*seen[0].values(), *seen[1].values()]:
        assert routes[0] == "seed_session" and routes[-1] == "verify"
        assert "get_weather" in routes


def test_a_killed_replica_is_restarted_and_resume_loses_no_row(
    run: tuple[Proc, int], tmp_path: Path
) -> None:
    proc, port = run
    victim = _replicas(port)[("counting", 0)]
    row = json.loads(DATA.read_text().splitlines()[0])
    # each model call takes 0.2 s, so rollouts are in flight when the kill lands
    row["responses_create_params"]["input"][-1]["content"] = "FAKE_SLEEP_0.2 Oslo?"
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps(row) + "\n")
    out = tmp_path / "out.jsonl"
    collect = _collect(port, out, data, 30)
    wait_for(
        lambda: out.exists() and len(out.read_text().splitlines()) >= 4, 60, "first rollouts"
    )
    os.kill(victim["actor_pid"], signal.SIGKILL)
    code = collect.wait(180)
    assert code in (0, 3), collect.text
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 30  # every rollout is a row, completed or failed
    failed = [r for r in written if r["_ng_status"] == "failed"]
    # only rollouts held by the killed replica fail, as calls to the environment that failed
    for r in failed:
        failure = r["_ng_failure"]
        assert failure["kind"] in ("seed_error", "tool_error", "verifier_error"), failure
        assert victim["url"] in failure["message"] or "is gone" in failure["message"], failure
    back = wait_for(
        lambda: (r := _replicas(port)[("counting", 0)])["actor_pid"] != victim["actor_pid"] and r,
        120,
        "the replica to register again",
    )
    assert back["url"] != victim["url"]
    resumed = Proc([*collect.popen.args, "+resume=true"])  # type: ignore[misc]
    assert resumed.wait(120) == 0, resumed.text
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in final) == [
        (0, i) for i in range(30)
    ]
    assert all(r["_ng_status"] == "completed" for r in final)
    assert sum(r["_ng_attempt_index"] == 1 for r in final) == len(failed)


def test_a_killed_node_loses_no_row_after_resume(
    run: tuple[Proc, int], cluster: TwoNodes, tmp_path: Path
) -> None:
    """The CPU node dies mid-run (both agent and both resources replicas with it); its rollouts
    fail fast instead of hanging, Ray starts the replicas again on a new CPU node, and resume
    completes every row."""
    _, port = run
    old = _replicas(port)
    row = json.loads(DATA.read_text().splitlines()[0])
    row["responses_create_params"]["input"][-1]["content"] = "FAKE_SLEEP_0.2 Oslo?"
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps(row) + "\n")
    out = tmp_path / "out.jsonl"
    collect = _collect(port, out, data, 20)
    wait_for(
        lambda: out.exists() and len(out.read_text().splitlines()) >= 4, 60, "first rollouts"
    )
    mark = len(cluster.lines)
    cluster.send("kill_cpu")
    cluster.wait("KILLED", after=mark)
    assert collect.wait(180) in (0, 3), collect.text
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 20  # every rollout is a row: none hung, none lost
    failed = [r for r in written if r["_ng_status"] == "failed"]
    assert failed  # the node died while rollouts were in flight
    mark = len(cluster.lines)
    cluster.send("add_cpu")
    raylet = int(cluster.wait("NODE cpu", after=mark).split()[2])
    on_cpu = [(AGENT, 0), (AGENT, 1), ("counting", 0), ("counting", 1)]

    def restarted() -> bool:
        table = _replicas(port)
        return all(
            table[k]["actor_pid"] != old[k]["actor_pid"] and _ppid(table[k]["actor_pid"]) == raylet
            for k in on_cpu
        )

    wait_for(restarted, 150, "the replicas to start again on the new CPU node", interval=0.5)
    resumed = Proc([*collect.popen.args, "+resume=true"])  # type: ignore[misc]
    assert resumed.wait(120) == 0, resumed.text
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in final) == [
        (0, i) for i in range(20)
    ]
    assert all(r["_ng_status"] == "completed" for r in final)
    assert sum(r["_ng_attempt_index"] == 1 for r in final) == len(failed)
