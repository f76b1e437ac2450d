"""The driver side of ``+ray_collectors`` without a cluster: counting the rows of the shard files
(``ShardLines``) and choosing one-collector-per-node placement only when enough nodes fit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nemo_gym.ray_support.collectors import ShardLines, _placement
from nemo_gym.rollouts.inputs import Task
from nemo_gym.rollouts.sharding import Shard, write_record


def test_shard_lines_count_appends_and_recount_a_replaced_file(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    lines = ShardLines(out, 2)
    assert lines.rows() == 0 and lines.total() is None  # nothing written yet
    first, second = tmp_path / "run.shard-0-of-2.jsonl", tmp_path / "run.shard-1-of-2.jsonl"
    first.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a"')  # two rows and half of a third
    assert lines.rows() == 2
    with first.open("ab") as handle:
        handle.write(b': 3}\n{"a": 4}\n')
    second.write_bytes(b"{}\n")
    assert lines.rows() == 4 + 1
    # resume moves failed rows out by writing a new file and renaming it into place
    tmp = first.with_name("replacement")
    tmp.write_bytes(b'{"a": 1}\n')
    os.replace(tmp, first)
    assert lines.rows() == 1 + 1
    # the shard records give the total once both exist: 3 and 2 units
    units = [Task(t, r, {}) for t, r in [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]]
    write_record(first, Shard(0, 2), "key", 5, units[0::2])
    assert lines.total() is None
    write_record(second, Shard(1, 2), "key", 5, units[1::2])
    assert lines.total() == 5
    # a shard's record written again (a collector starting) is read again
    write_record(first, Shard(0, 2), "key", 3, units[0:1])
    assert lines.total() == 1 + 2


class FakeRay:
    """Only ``nodes()``: a placement group is never asked for when too few nodes fit."""

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self._nodes = nodes

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no placement group should be created")


def _node(alive: bool, **resources: float) -> dict[str, Any]:
    return {"Alive": alive, "Resources": resources}


def test_fewer_fitting_nodes_than_collectors_fall_back_to_spread() -> None:
    spread = [{"scheduling_strategy": "SPREAD"}] * 2
    # two nodes, but only one offers cpu_node; a dead node with it does not count
    nodes = [_node(True, CPU=4), _node(True, CPU=2, cpu_node=4), _node(False, CPU=2, cpu_node=4)]
    assert _placement(FakeRay(nodes), 2, {"CPU": 1, "cpu_node": 1}) == (None, spread, [None] * 2)
    # a node without a free CPU in its total does not fit a collector
    nodes = [_node(True, CPU=0.5), _node(True, CPU=2)]
    assert _placement(FakeRay(nodes), 2, {"CPU": 1}) == (None, spread, [None] * 2)
    # one collector needs no placement group
    assert _placement(FakeRay([_node(True, CPU=2)]), 1, {"CPU": 1}) == (
        None,
        spread[:1],
        [None],
    )
