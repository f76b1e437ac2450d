"""Sharded collection through the real commands: N collectors (+num_shards / +shard_index) and
``ng_merge_rollouts`` give exactly the rows of one unsharded run, and a shard killed mid-run is
resumed and merged with no unit missing or twice."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, ng_run, wait_for

pytestmark = pytest.mark.e2e
AGENT = "example_single_tool_call_simple_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"
#: Fields that differ between two runs of the same rollout (clock and the fake's id counter).
VOLATILE = {"_ng_elapsed_s", "created_at", "id", "call_id"}


@pytest.fixture(scope="module")
def head_port() -> Iterator[int]:
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=90)
            yield port
        finally:
            run.stop()


def _input(tmp_path: Path, markers: dict[int, str]) -> Path:
    """The weather rows, the user text of row ``i`` suffixed with ``markers[i]``."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    for index, marker in markers.items():
        rows[index]["responses_create_params"]["input"][-1]["content"] += f" {marker}"
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def collect(port: int, data: Path, out: Path, *extra: str) -> Proc:
    return Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={out}",
            f"+agent_name={AGENT}",
            "+num_repeats=3",
            f"+head_server.port={port}",
            *extra,
        ]
    )


def merge(port: int, out: Path, *extra: str) -> Proc:
    script = BIN / "ng_merge_rollouts"
    cmd = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from nemo_gym.cli.merge import main; main()"]
    )
    return Proc([*cmd, f"+output_jsonl_fpath={out}", f"+head_server.port={port}", *extra])


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def rows_of(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(rows, key=lambda r: (r["_ng_task_index"], r["_ng_rollout_index"]))


def test_sharded_collection_writes_exactly_the_rows_of_an_unsharded_one(
    head_port: int, tmp_path: Path
) -> None:
    # row 2 fails (the model answers 500), row 5 is truncated: three statuses to compare
    data = _input(tmp_path, {2: "FAKE_HTTP_500", 5: "FAKE_TRUNCATE"})
    whole = collect(head_port, data, tmp_path / "whole.jsonl")
    assert whole.wait(120) == 3, whole.text  # 3: some rows failed
    shards = [
        collect(head_port, data, tmp_path / "sharded.jsonl", "+num_shards=3", f"+shard_index={i}")
        for i in range(3)
    ]  # all three at once, as a scheduler would start them
    for proc in shards:
        assert proc.wait(120) == 3, proc.text
    sizes = [
        len((tmp_path / f"sharded.shard-{i}-of-3.jsonl").read_text().splitlines()) for i in range(3)
    ]
    assert sizes == [8, 8, 8]  # 8 rows x 3 repeats, round-robin over 3 shards
    merged = merge(head_port, tmp_path / "sharded.jsonl")
    assert merged.wait(120) == 3, merged.text
    assert "24 rows from 3 shards, every (row, repeat) once" in merged.text

    expected, got = rows_of(tmp_path / "whole.jsonl"), rows_of(tmp_path / "sharded.jsonl")
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in got] == [
        (t, i) for t in range(8) for i in range(3)
    ]
    # the merged file is written in (task, repeat) order, not just sortable into it
    written = [json.loads(line) for line in (tmp_path / "sharded.jsonl").read_text().splitlines()]
    assert written == got
    statuses = {r["_ng_task_index"]: r["_ng_status"] for r in got}
    assert (statuses[2], statuses[5], statuses[0]) == ("failed", "truncated", "completed")
    assert [r["reward"] for r in got] == [r["reward"] for r in expected]
    assert [stable(r) for r in got] == [stable(r) for r in expected]  # run key, group ids too
    # the whole run's summary and metrics, not one shard's
    line = "over 21 of 24 rows, 3 truncated and included (truncated: 3), 3 failed (model_error: 3)"
    assert line in whole.text and line in merged.text, merged.text
    assert "over 7 tasks" in whole.text and "over 7 tasks" in merged.text
    for name in ("whole", "sharded"):
        assert (tmp_path / f"{name}_aggregate_metrics.json").exists()
    assert json.loads((tmp_path / "sharded_aggregate_metrics.json").read_text()) == json.loads(
        (tmp_path / "whole_aggregate_metrics.json").read_text()
    )


def test_a_killed_shard_resumes_its_part_and_the_merge_is_complete(
    head_port: int, tmp_path: Path
) -> None:
    # every rollout takes 1 s; shard 1 runs one at a time and is killed after two rows
    data = _input(tmp_path, dict.fromkeys(range(8), "FAKE_SLEEP_1"))
    out = tmp_path / "out.jsonl"
    fast = collect(head_port, data, out, "+num_shards=2", "+shard_index=0")  # all 12 at once
    assert fast.wait(120) == 0, fast.text
    slow = collect(
        head_port, data, out, "+num_shards=2", "+shard_index=1", "+num_samples_in_parallel=1"
    )
    shard1 = tmp_path / "out.shard-1-of-2.jsonl"
    wait_for(lambda: shard1.exists() and len(shard1.read_text().splitlines()) >= 2, 60, "two rows")
    slow.popen.send_signal(signal.SIGKILL)
    slow.wait(30)
    done_before = len(shard1.read_text().splitlines())
    assert 2 <= done_before < 12

    refused = merge(head_port, out)
    assert refused.wait(60) == 2, refused.text
    assert f"{shard1}: {12 - done_before} of the shard's 12 units are not in the file" in (
        refused.text
    )
    assert "resume it (the same command with +resume=true)" in refused.text
    assert not out.exists()

    resumed = collect(head_port, data, out, "+num_shards=2", "+shard_index=1", "+resume=true")
    assert resumed.wait(120) == 0, resumed.text
    assert f"Resuming: {done_before} rows of this run already in {shard1}" in resumed.text
    merged = merge(head_port, out)
    assert merged.wait(120) == 0, merged.text
    units = [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows_of(out)]
    assert units == [(t, i) for t in range(8) for i in range(3)]
    # the merged file is the unsharded run's: an unsharded resume finds it complete
    again = collect(head_port, data, out, "+resume=true")
    assert again.wait(120) == 0, again.text
    assert f"Resuming: 24 rows of this run already in {out}, 0 to run" in again.text
    # shard 0 had positions 0, 2, 4, ... of the expanded list; shard 1 the odd ones
    shard0 = {
        (r["_ng_task_index"], r["_ng_rollout_index"])
        for r in rows_of(tmp_path / "out.shard-0-of-2.jsonl")
    }
    assert shard0 == {divmod(p, 3) for p in range(0, 24, 2)}
