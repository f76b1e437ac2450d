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


def large_document(rows: int) -> bytes:
    return orjson.dumps({"verify_responses": [{**ROW, "_ng_task_index": i} for i in range(rows)]})


def parse_peak(parse: Any, data: bytes) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        value = parse(data)
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_loads_parses_large_documents_as_orjson_does_in_a_third_of_its_memory() -> None:
    data = large_document(3000)
    assert len(data) > jsonbytes.LARGE_BYTES
    ours, ours_peak = parse_peak(jsonbytes.loads, data)
    theirs, theirs_peak = parse_peak(orjson.loads, data)
    assert ours == theirs
    # orjson needs ~17 bytes per input byte while parsing, the standard library ~6
    assert ours_peak * 2 < theirs_peak


def test_loads_rejects_what_orjson_rejects_on_both_sides_of_the_threshold() -> None:
    pad = b" " * (jsonbytes.LARGE_BYTES + 1)
    bad = [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\xc3"}', b'{"a": 1', b"[1, 2,]"]
    for doc in bad:
        for data in (doc, doc + pad):
            try:
                jsonbytes.loads(data)
            except orjson.JSONDecodeError:
                pass
            else:
                raise AssertionError(f"accepted {data[:20]!r} ({len(data)} bytes)")
    assert jsonbytes.loads(b'{"a": [1, 2.5, null, "\xc3\xa9"]}' + pad) == {"a": [1, 2.5, None, "é"]}
    assert jsonbytes.loads(memoryview(b"[1]" + pad)) == [1]
