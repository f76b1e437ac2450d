"""``ng_collect_rollouts +ray_collectors=2``: two shard collectors as Ray tasks on a real local
Ray cluster, merged by the driver into the rows an unsharded run writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import BIN, Proc, fake_openai_process, free_port, ng_run
from tests.ray_verify.local_cluster import LOOPBACK, loopback_cluster
from tests.shard.test_sharded_collection import AGENT, DATA, rows_of, stable

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
]


def test_ray_collectors_write_the_rows_of_an_unsharded_run(tmp_path: Path) -> None:
    def collect(out: Path, *extra: str) -> Proc:
        return Proc(
            [
                str(BIN / "ng_collect_rollouts"),
                f"+input_jsonl_fpath={DATA}",
                f"+output_jsonl_fpath={out}",
                f"+agent_name={AGENT}",
                "+num_repeats=2",
                f"+head_server.port={port}",
                *extra,
            ],
            env=LOOPBACK,
        )

    port = free_port()
    with loopback_cluster() as (address, node_id), fake_openai_process() as base_url:
        server = ng_run(port, base_url)
        try:
            server.wait_line("servers healthy in", timeout=120)
            whole = collect(tmp_path / "whole.jsonl")
            assert whole.wait(120) == 0, whole.text
            on_ray = collect(
                tmp_path / "ray.jsonl", "+ray_collectors=2", f"+ray_head_node_address={address}"
            )
            assert on_ray.wait(300) == 0, on_ray.text
        finally:
            server.stop()
    for index in range(2):
        assert f"Collector of shard {index}: exit 0 on Ray node {node_id}" in on_ray.text
        assert len((tmp_path / f"ray.shard-{index}-of-2.jsonl").read_text().splitlines()) == 8
    assert "16 rows from 2 shards, every (row, repeat) once" in on_ray.text
    # the progress bar's last state: every row of both shard files, of the 16 the shards hold
    last = on_ray.text.split("Rows written by 2 collectors:")[-1].split("\n")[0]
    assert "| 16/16 [" in last, on_ray.text
    # one cluster node: no one-per-node placement, so no "placed on" line
    assert "placed on Ray node" not in on_ray.text
    expected, got = rows_of(tmp_path / "whole.jsonl"), rows_of(tmp_path / "ray.jsonl")
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in got] == [
        (t, i) for t in range(8) for i in range(2)
    ]
    assert [stable(r) for r in got] == [stable(r) for r in expected]
    assert json.loads((tmp_path / "ray_aggregate_metrics.json").read_text()) == json.loads(
        (tmp_path / "whole_aggregate_metrics.json").read_text()
    )


def test_ray_collectors_refuse_a_shard_index(tmp_path: Path) -> None:
    proc = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+input_jsonl_fpath={DATA}",
            f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}",
            "+ray_collectors=2",
            "+shard_index=1",
        ]
    )
    assert proc.wait(60) == 2, proc.text
    assert "+shard_index: cannot be combined with +ray_collectors" in proc.text
