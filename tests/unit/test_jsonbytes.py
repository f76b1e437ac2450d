"""Bytes that wait hold only their length: ``core.jsonbytes`` and the packed forms built on it
(``PackedTask``, the run summary's kept verify responses)."""

from __future__ import annotations

import sys
import tracemalloc
from typing import Any

import orjson

from nemo_gym.core import jsonbytes
from nemo_gym.rollouts.inputs import Task
from nemo_gym.rollouts.summary import RunSummary

ROW: dict[str, Any] = {
    "responses_create_params": {"input": [{"role": "user", "content": "going out in sf tn " * 20}]},
    "agent_ref": {"name": "weather_agent"},
    "expected": list(range(40)),
}


def traced_bytes(make: Any, n: int = 500) -> tuple[int, list[bytes]]:
    tracemalloc.start()
    try:
        made = [make() for _ in range(n)]
        return tracemalloc.get_traced_memory()[0], made
    finally:
        tracemalloc.stop()


def test_dumps_is_orjson_at_exactly_its_size() -> None:
    assert jsonbytes.dumps(ROW) == orjson.dumps(ROW)
    kept, made = traced_bytes(lambda: jsonbytes.dumps(ROW))
    exact = sum(sys.getsizeof(b) for b in made) + sys.getsizeof(made)
    # the list and n bytes objects of exactly their size, plus a little allocator rounding
    assert abs(kept - exact) <= 16 * len(made)
    # what this guards against: orjson's own result keeps the buffer it grew (several KB)
    kept_orjson, made_orjson = traced_bytes(lambda: orjson.dumps(ROW))
    assert kept_orjson > 2 * exact


def test_a_packed_task_keeps_its_row_as_exact_bytes() -> None:
    task = Task(3, 1, {**ROW, "_ng_task_index": 3, "_ng_repeat_index": 1})
    packed = task.packed()
    assert packed.key == (3, 1) and packed.agent_name == "weather_agent"
    assert packed.body == orjson.dumps(task.row) == task.body
    assert packed.row == task.row
    packed.row["agent_ref"] = None  # a decoded copy: the packed task is unchanged
    assert packed.row == task.row
    assert sys.getsizeof(packed.body) == sys.getsizeof(b"") + len(packed.body)


def test_the_summary_keeps_verify_responses_packed_and_gives_them_back() -> None:
    summary = RunSummary()
    rows = [
        {**ROW, "reward": float(i % 2), "_ng_task_index": i, "response": {"usage": {"n": i}}}
        for i in range(4)
    ]
    for row in rows:
        summary.add(row)
    assert summary.verify_responses == [
        {
            "agent_ref": {"name": "weather_agent"},
            "expected": list(range(40)),
            "reward": float(i % 2),
            "_ng_task_index": i,
            "response": {"usage": {"n": i}},
        }
        for i in range(4)
    ]
    assert all(isinstance(p, bytes) for p in summary.packed_verify_responses)
