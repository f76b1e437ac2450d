"""``ng_collect_rollouts +ray_collectors=2`` on a real two-node Ray cluster on this machine.

Two raylets on 127.0.0.1 (``tests/ray/two_nodes.py``: Ray's ``cluster_utils.Cluster``, a head
node with one CPU and a second node with two). The two collectors are placed one per node (a
``STRICT_SPREAD`` placement group), and the merged output holds exactly the rows of an unsharded
run; ``+ray_collector_resources`` keeps collectors on the nodes that offer them. Then the node
running one collector dies mid-run: the driver names that shard, the collector's process is
gone with its node, and the same command with ``+resume=true`` (now on one node, so the
collectors are spread best-effort) completes the rows of the unsharded run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import BIN, Proc, fake_openai_process, free_port, ng_run, wait_for
from tests.ray.test_replicas import TwoNodes
from tests.shard.test_sharded_collection import AGENT, _input, rows_of, stable

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed (the `ray` extra); these tests start a real Ray cluster",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
]
UNITS = [(t, i) for t in range(8) for i in range(2)]  # 8 weather rows x 2 repeats


@pytest.fixture(scope="module")
def cluster() -> Iterator[TwoNodes]:
    nodes = TwoNodes()
    try:
        yield nodes
    finally:
        left = nodes.shutdown()
    assert left == []  # every Ray process of the cluster is gone


@pytest.fixture(scope="module")
def head_port() -> Iterator[int]:
    """``ng_run`` of the weather environment (not on Ray), which every collector calls."""
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=120)
            yield port
        finally:
            run.stop()


def _node_ids(cluster: TwoNodes) -> dict[str, str]:
    return {name: cluster.wait(f"NODE {name}").split()[3] for name in ("head", "cpu")}


def _collect(
    port: int, data: Path, out: Path, *extra: str, env: dict[str, str] | None = None
) -> Proc:
    return Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={out}",
            f"+agent_name={AGENT}",
            "+num_repeats=2",
            f"+head_server.port={port}",
            *extra,
        ],
        env=env,
    )


def _placed(text: str) -> dict[int, str]:
    """Shard -> node of the driver's ``Collector of shard i: placed on Ray node <id>`` lines."""
    marker = "Collector of shard "
    found = {}
    for line in text.splitlines():
        if line.startswith(marker) and ": placed on Ray node " in line:
            shard, node = line[len(marker) :].split(": placed on Ray node ")
            found[int(shard)] = node.strip()
    return found


def _collector(out: Path, shard: int) -> psutil.Process | None:
    """The running collector process of ``shard`` of ``out`` (None: there is none)."""
    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info["cmdline"] or []
        if f"+output_jsonl_fpath={out}" in args and f"+shard_index={shard}" in args:
            return proc
    return None


def test_two_collectors_run_one_per_node_and_merge_the_unsharded_rows(
    cluster: TwoNodes, head_port: int, tmp_path: Path
) -> None:
    data = _input(tmp_path, {})
    whole = _collect(head_port, data, tmp_path / "whole.jsonl")
    assert whole.wait(120) == 0, whole.text
    out = tmp_path / "ray.jsonl"
    on_ray = _collect(
        head_port,
        data,
        out,
        "+ray_collectors=2",
        f"+ray_head_node_address={cluster.address}",
        env=cluster.env,
    )
    assert on_ray.wait(180) == 0, on_ray.text
    nodes = _node_ids(cluster)
    placed = _placed(on_ray.text)
    assert set(placed) == {0, 1} and set(placed.values()) == {nodes["head"], nodes["cpu"]}
    for shard, node in placed.items():  # each ran where it was placed
        assert f"Collector of shard {shard}: exit 0 on Ray node {node}" in on_ray.text
        rows = (tmp_path / f"ray.shard-{shard}-of-2.jsonl").read_text().splitlines()
        assert len(rows) == 8
    assert "16 rows from 2 shards, every (row, repeat) once" in on_ray.text
    last = on_ray.text.split("Rows written by 2 collectors:")[-1].split("\n")[0]
    assert "| 16/16 [" in last, on_ray.text
    expected, got = rows_of(tmp_path / "whole.jsonl"), rows_of(out)
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in got] == UNITS
    assert [stable(r) for r in got] == [stable(r) for r in expected]


def test_collector_resources_keep_both_collectors_on_the_nodes_that_offer_them(
    cluster: TwoNodes, head_port: int, tmp_path: Path
) -> None:
    out = tmp_path / "ray.jsonl"
    # only the CPU node offers cpu_node: one node for two collectors, so no one-per-node group
    on_ray = _collect(
        head_port,
        _input(tmp_path, {}),
        out,
        "+ray_collectors=2",
        "+ray_collector_resources={cpu_node:1}",
        env=cluster.env,
    )
    assert on_ray.wait(180) == 0, on_ray.text
    cpu = _node_ids(cluster)["cpu"]
    assert _placed(on_ray.text) == {}
    for shard in (0, 1):
        assert f"Collector of shard {shard}: exit 0 on Ray node {cpu}" in on_ray.text
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows_of(out)] == UNITS


def test_a_collector_whose_node_dies_is_completed_by_resume(
    cluster: TwoNodes, head_port: int, tmp_path: Path
) -> None:
    """Runs last in this module: it kills the cluster's CPU node."""
    # every model call takes 1 s; one rollout at a time per collector: 8 s or more per shard
    data = _input(tmp_path, dict.fromkeys(range(8), "FAKE_SLEEP_1"))
    whole = _collect(head_port, data, tmp_path / "whole.jsonl", "+num_samples_in_parallel=16")
    assert whole.wait(120) == 0, whole.text
    out = tmp_path / "ray.jsonl"
    args = ("+ray_collectors=2", "+num_samples_in_parallel=1")
    on_ray = _collect(head_port, data, out, *args, env=cluster.env)
    nodes = _node_ids(cluster)
    placed = wait_for(
        lambda: len(p := _placed(on_ray.text)) == 2 and p, 120, "both collectors placed"
    )
    victim = next(shard for shard, node in placed.items() if node == nodes["cpu"])
    survivor = 1 - victim
    victim_file = tmp_path / f"ray.shard-{victim}-of-2.jsonl"
    wait_for(
        lambda: victim_file.exists() and len(victim_file.read_text().splitlines()) >= 2,
        90,
        "two rows of the collector on the CPU node",
    )
    mark = len(cluster.lines)
    cluster.send("kill_cpu")
    cluster.wait("KILLED", after=mark)
    assert on_ray.wait(180) == 1, on_ray.text
    assert f"Collector of shard {survivor}: exit 0 on Ray node {nodes['head']}" in on_ray.text
    assert f"Collector of shard {victim}: exit None on Ray node {nodes['cpu']}" in on_ray.text
    assert f"the collectors of shard(s) [{victim}] did not finish" in on_ray.text
    assert "+resume=true to complete them" in on_ray.text
    # the collector's own process died with its node (it is a child of the node's Ray worker)
    wait_for(lambda: _collector(out, victim) is None, 30, "the dead node's collector to exit")
    done_before = len(victim_file.read_text().splitlines())
    assert 2 <= done_before < 8
    assert not out.exists()

    resumed = _collect(head_port, data, out, *args, "+resume=true", env=cluster.env)
    assert resumed.wait(180) == 0, resumed.text
    # one node left: fewer nodes than collectors, so no one-per-node placement
    assert _placed(resumed.text) == {}
    for shard in (0, 1):
        assert f"Collector of shard {shard}: exit 0 on Ray node {nodes['head']}" in resumed.text
    assert "16 rows from 2 shards, every (row, repeat) once" in resumed.text
    expected, got = rows_of(tmp_path / "whole.jsonl"), rows_of(out)
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in got] == UNITS
    assert [stable(r) for r in got] == [stable(r) for r in expected]
    assert all(r["_ng_attempt_index"] == 0 for r in got)  # no row was recorded as failed
