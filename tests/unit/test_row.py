"""The output row: the frozen example of schema version 1, the rows the collector writes, and
the one status rule read by the collector and the summary.

``data/row_v1.json`` is frozen: a change to the row layout must fail here until it gets a new
schema version and a new frozen example (old files stay readable).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from nemo_gym.core.errors import UpstreamError
from nemo_gym.rollouts.collect import run_one
from nemo_gym.rollouts.inputs import Task, expand, identify
from nemo_gym.rollouts.records import RolloutFailure, failed_row, finished_row
from nemo_gym.rollouts.row import FAILED_KINDS, ROW_SCHEMA_VERSION, RolloutRow, row_status
from nemo_gym.rollouts.summary import summarise
from nemo_gym.rollouts.trainer_api import STATUS_OF_FAILURE
from nemo_gym.server.http_client import HttpResponse

FROZEN = json.loads((Path(__file__).parent / "data" / "row_v1.json").read_text())
EXAMPLE = {row["_ng_status"]: row for row in FROZEN}
INPUT = {"responses_create_params": {"input": "What is 2 + 2?"}, "expected": 4}
DECLARED = {f.alias or name for name, f in RolloutRow.model_fields.items()}
REQUIRED = {f.alias or name for name, f in RolloutRow.model_fields.items() if f.is_required()}


def collected_task() -> Task:
    """A task as ``ng_collect_rollouts`` sends it: repeated, then identified."""
    (task,) = expand([INPUT], 1)
    identify(task, "0123456789abcdef", 0)
    return task


def json_type(value: Any) -> str:
    if value is None or isinstance(value, (bool, str, list, dict)):
        return type(value).__name__
    return "number" if isinstance(value, (int, float)) else repr(type(value))


def assert_same_layout(written: dict[str, Any], example: dict[str, Any]) -> None:
    """Same Gym fields as the example (every key the model declares) with the same JSON types
    where both are set, and a valid row."""
    assert {k for k in written if k.startswith("_ng_")} == {k for k in example if k[:4] == "_ng_"}
    assert DECLARED <= written.keys()
    for key in DECLARED - {"responses_create_params", "response"}:
        a, b = written[key], example[key]
        if a is not None and b is not None:
            assert json_type(a) == json_type(b), key
            if isinstance(a, dict):
                assert a.keys() == b.keys(), key
    RolloutRow.model_validate(written)


def test_frozen_example_parses_and_round_trips() -> None:
    assert [r["_ng_status"] for r in FROZEN] == ["completed", "truncated", "failed"]
    for raw in FROZEN:
        row = RolloutRow.model_validate(raw)
        assert row.schema_version == ROW_SCHEMA_VERSION == 1
        assert row.to_row() == raw  # nothing dropped or renamed, extras kept
    completed = RolloutRow.model_validate(EXAMPLE["completed"])
    assert completed.model_extra == {"expected_city": "Paris"}
    assert completed.reward == 1.0 and completed.failure is None and completed.num_steps == 2
    named_like_fields = {**EXAMPLE["completed"], "status": "x", "reward_": 2}
    assert RolloutRow.model_validate(named_like_fields).to_row() == named_like_fields
    truncated = RolloutRow.model_validate(EXAMPLE["truncated"])
    assert truncated.failure is not None and truncated.failure.kind == "max_steps"


def test_frozen_example_declares_every_field_of_the_model() -> None:
    for raw in FROZEN:
        assert DECLARED <= raw.keys()
        assert {k for k in raw if k.startswith("_ng_")} <= DECLARED
    assert set(EXAMPLE["completed"]) - DECLARED == {"expected_city"}


def test_a_row_returned_outside_ng_collect_rollouts_needs_only_the_required_fields() -> None:
    bare = {k: v for k, v in EXAMPLE["completed"].items() if k in REQUIRED}
    assert RolloutRow.model_validate(bare).to_row() == bare
    assert REQUIRED == DECLARED - {
        "_ng_rollout_index",
        "_ng_run_key",
        "_ng_attempt_index",
        "_ng_group_id",
        "_ng_rollout_id",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"_ng_status": "done"}, "_ng_status"),
        ({"_ng_schema_version": 2}, "_ng_schema_version"),
        ({"reward": None}, "numeric reward"),
        ({"reward": True}, "reward"),
        ({"_ng_failure": {"kind": "model_error", "message": "x", "step": 1}}, "_ng_failure null"),
        ({"_ng_status": "failed"}, "reward null"),
        ({"_ng_status": "truncated"}, "a failure of kind"),
        ({"_ng_failure": {"kind": "oops", "message": "x"}}, "kind"),
        ({"_ng_task_index": -1}, "_ng_task_index"),
    ],
)
def test_inconsistent_rows_are_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RolloutRow.model_validate({**EXAMPLE["completed"], **change})


def test_rows_built_by_agents_match_the_frozen_layout() -> None:
    task = collected_task()
    started = time.monotonic()
    verified = {**task.row, "response": {"id": "r", "output": []}, "reward": 1, "judge": "ok"}
    assert_same_layout(
        finished_row(task.row, verified, "completed", 2, started), EXAMPLE["completed"]
    )
    for stop in ("max_steps", "truncated"):
        row = finished_row(task.row, {**verified, "reward": 0.0}, stop, 16, started)
        assert row["_ng_failure"]["kind"] == stop
        assert_same_layout(row, EXAMPLE["truncated"])
    failure = RolloutFailure("model_error", "HTTP 400", step=1)
    assert_same_layout(failed_row(task.row, failure, started), EXAMPLE["failed"])


class FakeHttp:
    """Answers the collector's one POST with a canned response, or raises."""

    def __init__(self, answer: HttpResponse | UpstreamError) -> None:
        self.answer = answer

    async def request(self, *args: Any, **kwargs: Any) -> HttpResponse:
        if isinstance(self.answer, UpstreamError):
            raise self.answer
        return self.answer


def http(status: int, body: Any) -> FakeHttp:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return FakeHttp(HttpResponse(status=status, body=raw, headers={}))


@pytest.mark.parametrize(
    ("client", "status", "kind"),
    [
        (FakeHttp(UpstreamError("deadline passed", kind="timeout")), "failed", "timeout"),
        (FakeHttp(UpstreamError("refused", kind="connection")), "failed", "agent_error"),
        (http(500, {"detail": "boom"}), "failed", "agent_error"),
        (http(422, {"detail": "bad row"}), "failed", "invalid_input"),
        (http(200, b"not json"), "failed", "agent_error"),
        (http(200, [1, 2]), "failed", "agent_error"),
        # an agent written for NeMo Gym answers the verify response: no _ng_ keys
        (http(200, {**INPUT, "response": {"output": []}, "reward": 0.5}), "completed", None),
        (
            http(200, {**INPUT, "response": {"output": []}, "reward": "1"}),
            "failed",
            "verifier_error",
        ),
    ],
)
async def test_rows_written_by_the_collector_match_the_frozen_layout(
    client: FakeHttp, status: str, kind: str | None
) -> None:
    task = collected_task()
    row, raw = await run_one(client, "http://agent/run", task, 5.0)  # type: ignore[arg-type]
    assert raw is None and row["_ng_status"] == status
    assert (row["_ng_failure"] or {}).get("kind") == kind
    assert row["expected"] == 4  # the input row's fields are kept
    assert_same_layout(row, EXAMPLE[status])
    if kind == "verifier_error":
        assert "'1'" in row["_ng_failure"]["message"] and row["reward"] is None


ROWS_WITHOUT_STATUS = [
    ({"reward": 0.5}, "completed"),
    ({"reward": 0}, "completed"),
    ({"reward": None}, "failed"),
    ({}, "failed"),
    ({"reward": "1"}, "failed"),
    ({"reward": True}, "failed"),  # a boolean is not a reward
    ({"reward": float("nan")}, "failed"),
    ({"reward": 1.0, "_ng_status": "unknown"}, "completed"),  # an unknown status is not read
    ({"reward": None, "_ng_status": "truncated"}, "truncated"),  # an explicit status wins
    ({"reward": 1.0, "_ng_status": "failed"}, "failed"),
]


@pytest.mark.parametrize(("row", "status"), ROWS_WITHOUT_STATUS)
def test_row_status_rule(row: dict[str, Any], status: str) -> None:
    assert row_status(row) == status


def test_summary_reads_status_by_the_same_rule() -> None:
    summary = summarise(row for row, _ in ROWS_WITHOUT_STATUS)
    expected = [status for _, status in ROWS_WITHOUT_STATUS]
    assert dict(summary.statuses) == {s: expected.count(s) for s in set(expected)}
    # averaged: the rows not failed that have a numeric reward (0.5, 0, 1.0), never the failed
    assert summary.averages()["reward"] == pytest.approx(1.5 / 3)


def test_every_failed_kind_has_an_http_status_for_trainers() -> None:
    assert set(STATUS_OF_FAILURE) == set(FAILED_KINDS)
