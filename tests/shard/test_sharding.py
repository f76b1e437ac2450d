"""Which units a shard gets, the parameter errors, and what ng_merge_rollouts refuses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nemo_gym.core.errors import ConfigError
from nemo_gym.rollouts.inputs import Task, expand
from nemo_gym.rollouts.merge import load_shards
from nemo_gym.rollouts.resume import register_run
from nemo_gym.rollouts.sharding import Shard, check_shard, unsharded_path, write_record
from tests.helpers import BIN, Proc

ROW = {"responses_create_params": {"input": "hi"}}


def test_shards_partition_the_expanded_units_round_robin() -> None:
    tasks = expand([dict(ROW) for _ in range(5)], [3, 1, 2, 1, 3])  # 10 units
    shards = [Shard(i, 4).select(tasks) for i in range(4)]
    # expanded: (0,0) (0,1) (0,2) (1,0) (2,0) (2,1) (3,0) (4,0) (4,1) (4,2)
    assert [[t.key for t in s] for s in shards] == [
        [(0, 0), (2, 0), (4, 1)],  # positions 0, 4, 8
        [(0, 1), (2, 1), (4, 2)],  # 1, 5, 9
        [(0, 2), (3, 0)],  # 2, 6
        [(1, 0), (4, 0)],  # 3, 7
    ]
    assert sorted(k for s in shards for k in (t.key for t in s)) == sorted(t.key for t in tasks)
    assert unsharded_path(Shard(2, 4).path(Path("d/out.jsonl"))) == Path("d/out.jsonl")
    assert Shard(2, 4).path(Path("d/out.jsonl")) == Path("d/out.shard-2-of-4.jsonl")


@pytest.mark.parametrize(
    ("num_shards", "shard_index", "key", "message"),
    [
        (0, 0, "+num_shards", "must be at least 1 (got 0)"),
        (3, 3, "+shard_index", "must be between 0 and 2 for +num_shards=3 (got 3;"),
        (3, -1, "+shard_index", "must be between 0 and 2 for +num_shards=3 (got -1;"),
        (3, None, "+shard_index", "+num_shards=3 needs +shard_index=i"),
        (None, 1, "+num_shards", "+shard_index=1 needs +num_shards=N"),
    ],
)
def test_bad_shard_parameters_are_refused_naming_the_key(
    num_shards: int | None, shard_index: int | None, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        check_shard(num_shards, shard_index)
    assert err.value.key == key and message in err.value.detail
    assert check_shard(None, None) is None and check_shard(1, None) is None
    assert check_shard(2, 1) == Shard(1, 2)


def test_the_command_refuses_an_out_of_range_shard_before_any_work(tmp_path: Path) -> None:
    proc = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+input_jsonl_fpath={tmp_path / 'missing.jsonl'}",
            f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}",
            "+num_shards=2",
            "+shard_index=2",
        ]
    )
    assert proc.wait(60) == 2, proc.text
    assert "error: command line: +shard_index: must be between 0 and 1 for +num_shards=2" in (
        proc.text
    )
    assert list(tmp_path.iterdir()) == []


def _shard(out: Path, shard: Shard, tasks: list[Task], rows: list[tuple[int, int]]) -> Path:
    path = shard.path(out)
    register_run(path, "k1", {"input": "x"})
    write_record(path, shard, "k1", len(tasks), shard.select(tasks))
    path.write_text(
        "".join(
            json.dumps({"_ng_task_index": t, "_ng_rollout_index": r, "_ng_run_key": "k1"}) + "\n"
            for t, r in rows
        )
    )
    return path


def test_merge_refuses_missing_stray_and_duplicate_units(tmp_path: Path) -> None:
    tasks = expand([dict(ROW) for _ in range(3)], 2)  # 6 units
    out = tmp_path / "out.jsonl"
    a = _shard(out, Shard(0, 2), tasks, [(0, 0), (1, 0), (2, 0)])
    b = _shard(out, Shard(1, 2), tasks, [(0, 1), (1, 1), (2, 1)])
    merged = load_shards([b, a])
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in merged.rows] == [
        (t, r) for t in range(3) for r in range(2)
    ]
    with pytest.raises(ConfigError, match=r"shard\(s\) \[1\] of 2 are missing"):
        load_shards([a])
    _shard(out, Shard(1, 2), tasks, [(0, 1), (1, 1)])
    with pytest.raises(ConfigError, match=r"1 of the shard's 3 units are not in the file: "):
        load_shards([a, b])
    _shard(out, Shard(1, 2), tasks, [(0, 1), (1, 1), (2, 1), (2, 0)])
    with pytest.raises(ConfigError, match=r"not given .*\(task 2, repeat 0\)"):
        load_shards([a, b])
    _shard(out, Shard(1, 2), tasks, [(0, 1), (1, 1), (2, 1), (2, 1)])
    with pytest.raises(ConfigError, match=r"units written twice: \(task 2, repeat 1\)"):
        load_shards([a, b])
    other = _shard(tmp_path / "x.jsonl", Shard(1, 3), tasks, [])
    with pytest.raises(ConfigError, match="are not one collection"):
        load_shards([a, other])


def test_merge_command_names_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    proc = Proc(
        [
            sys.executable,
            "-c",
            "from nemo_gym.cli.merge import main; main()",
            f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}",
        ]
    )
    assert proc.wait(60) == 2, proc.text
    assert "+input_glob: no shard file (<stem>.shard-<i>-of-<N>.jsonl) matches" in proc.text
