"""Input rows, repeat order, overrides, failure accounting, output lines, resume identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemo_gym.core.errors import ConfigError, InputDataError
from nemo_gym.rollouts.inputs import deep_merge, expand, read_rows
from nemo_gym.rollouts.output import (
    RowWriter,
    build_manifest,
    finish_interrupted_rewrite,
    read_existing,
    repair_partial_line,
)
from nemo_gym.rollouts.resume import failures_path, plan_run, run_key
from nemo_gym.rollouts.summary import summarise

ROW = {"responses_create_params": {"input": "hi"}, "answer": 1}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rows_are_validated_and_limited(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl", [json.dumps({**ROW, "i": i}) for i in range(5)] + [""]
    )
    rows = read_rows(path, limit=3)
    assert [r["i"] for r in rows] == [0, 1, 2]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"other": 1}', "missing the object `responses_create_params`"),
        (
            '{"responses_create_params": {"input": "x", "temprature": 0}}',
            "responses_create_params.temprature: unknown key (did you mean 'temperature'?)",
        ),
        ('{"responses_create_params": {"instructions": "x"}}', "params.input: missing"),
        ('{"responses_create_params": {"input": [1]}}', "input.0: each item must be an object"),
        ('{"responses_create_params": {"input": "x", "temperature": "hot"}}', "must be a number"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write_lines(tmp_path / "in.jsonl", [json.dumps(ROW), "", line, json.dumps(ROW)])
    with pytest.raises(InputDataError) as info:
        read_rows(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert message in str(info.value)


def test_overrides_are_merged_deeply_into_every_row(tmp_path: Path) -> None:
    row = {"responses_create_params": {"input": "x", "text": {"format": {"type": "text"}}}}
    path = write_lines(tmp_path / "in.jsonl", [json.dumps(row)])
    (out,) = read_rows(path, overrides={"temperature": 0.2, "text": {"verbosity": "low"}})
    assert out["responses_create_params"] == {
        "input": "x",
        "temperature": 0.2,
        "text": {"format": {"type": "text"}, "verbosity": "low"},
    }
    assert deep_merge({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


def test_repeats_follow_aabbcc_order() -> None:
    tasks = expand([{"n": "a"}, {"n": "b"}, {"n": "c"}], 2)
    assert [(t.row["n"], t.task_index, t.repeat_index) for t in tasks] == [
        ("a", 0, 0),
        ("a", 0, 1),
        ("b", 1, 0),
        ("b", 1, 1),
        ("c", 2, 0),
        ("c", 2, 1),
    ]
    assert tasks[3].row["_ng_task_index"] == 1 and tasks[3].row["_ng_repeat_index"] == 1


def test_failed_rows_are_counted_not_averaged_as_zero() -> None:
    summary = summarise(
        [
            {"reward": 1.0, "_ng_status": "completed", "accuracy": True},
            {
                "reward": 0.0,
                "_ng_status": "truncated",
                "accuracy": False,
                "_ng_failure": {"kind": "max_steps"},
            },
            {"reward": None, "_ng_status": "failed", "_ng_failure": {"kind": "model_error"}},
            {"reward": None, "_ng_status": "failed", "_ng_failure": {"kind": "model_error"}},
        ]
    )
    assert summary.averages() == {"reward": 0.5, "accuracy": 0.5}
    assert summary.scored == 2 and summary.total == 4
    assert summary.line() == (
        "mean reward 0.5 (95% CI 0.0945 to 0.905) over 2 of 4 rows, "
        "1 truncated and included (max_steps: 1), "
        "2 failed (model_error: 2)"
    )


def test_writer_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.jsonl"
    writer = RowWriter(path)
    writer.write({"a": 1, "text": "line\nbreak"})
    writer.close()
    second = RowWriter(path)
    second.write({"a": 2})
    second.close()
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["a"] for line in lines] == [1, 2]


def test_read_existing_skips_a_torn_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "out.jsonl", ['{"a": 1}', '{"a": 2'])
    rows, bad = read_existing(path)
    assert rows == [{"a": 1}] and bad == 1


def manifest_of(tmp_path: Path, **changes: object) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "input_path": tmp_path / "in.jsonl",
        "rows": [ROW],
        "agent_name": "a",
        "num_repeats": 2,
        "limit": None,
        "overrides": {},
        **changes,
    }
    return build_manifest(**kwargs)  # type: ignore[arg-type]


def result(key: str, task: int, repeat: int, status: str, attempt: int = 0) -> dict[str, object]:
    return {
        "_ng_run_key": key,
        "_ng_task_index": task,
        "_ng_repeat_index": repeat,
        "_ng_rollout_index": repeat,
        "_ng_attempt_index": attempt,
        "_ng_status": status,
        "reward": None if status == "failed" else 1.0,
    }


def test_a_resume_only_sees_its_own_run_and_refuses_others(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    mine, other = manifest_of(tmp_path), manifest_of(tmp_path, num_repeats=3)
    plan_run(out, mine, resume=False, max_attempts=3)
    plan_run(out, other, resume=False, max_attempts=3)  # a second collector on the same file
    writer = RowWriter(out)
    writer.write(result(run_key(mine), 0, 0, "completed"))
    writer.write(result(run_key(other), 0, 0, "completed"))
    writer.write(result(run_key(other), 0, 1, "completed"))
    writer.close()
    plan = plan_run(out, mine, resume=True, max_attempts=3)
    assert plan.done == {(0, 0)} and len(plan.kept) == 1  # the other run's rows do not count
    with pytest.raises(ConfigError, match="already holds 1 rows of this very run"):
        plan_run(out, mine, resume=False, max_attempts=3)
    with pytest.raises(ConfigError, match="holds no run of this input and config"):
        plan_run(
            out, manifest_of(tmp_path, rows=[{**ROW, "answer": 2}]), resume=True, max_attempts=3
        )


def test_failed_rows_are_retried_up_to_the_attempt_limit_and_moved_out(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    manifest = manifest_of(tmp_path)
    key = run_key(manifest)
    plan_run(out, manifest, resume=False, max_attempts=2)
    writer = RowWriter(out)
    for row in (
        result(key, 0, 0, "completed"),
        result(key, 0, 1, "failed"),  # first attempt failed: run again
        result(key, 1, 0, "failed", attempt=1),  # second attempt failed: out of attempts
    ):
        writer.write(row)
    writer.close()
    plan = plan_run(out, manifest, resume=True, max_attempts=2)
    assert plan.retry == {(0, 1): 1} and plan.done == {(0, 0), (1, 0)} and plan.given_up == 1
    assert plan.moved == 1
    left = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["_ng_task_index"], r["_ng_repeat_index"]) for r in left] == [(0, 0), (1, 0)]
    moved = [json.loads(line) for line in failures_path(out).read_text().splitlines()]
    assert [(r["_ng_task_index"], r["_ng_repeat_index"]) for r in moved] == [(0, 1)]


def test_an_unfinished_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    out = write_lines(tmp_path / "out.jsonl", ['{"a": 1}'])
    with out.open("ab") as f:
        f.write(b'{"a": 2, "text": "killed in the midd')
    assert repair_partial_line(out) == len(b'{"a": 2, "text": "killed in the midd')
    RowWriter(out).write({"a": 3})
    assert [json.loads(line)["a"] for line in out.read_text().splitlines()] == [1, 3]
    assert repair_partial_line(out) == 0


def test_a_rewrite_cut_short_by_a_crash_is_completed(tmp_path: Path) -> None:
    out = write_lines(tmp_path / "out.jsonl", ['{"a": 1}', '{"a": 2}'])
    (tmp_path / "out.jsonl.rewrite").write_text('{"a": 1}\n')  # saved, then the crash
    assert finish_interrupted_rewrite(out)
    assert out.read_text() == '{"a": 1}\n' and not (tmp_path / "out.jsonl.rewrite").exists()


def test_missing_input_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"nope.jsonl: input file not found$"):
        read_rows(tmp_path / "nope.jsonl")
