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
    check_resume,
    read_existing,
    write_manifest,
)
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
        "mean reward 0.5 over 2 of 4 rows, 1 truncated and included (max_steps: 1), "
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


def test_resume_refuses_other_input_or_config(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    kwargs = {
        "input_path": tmp_path / "in.jsonl",
        "rows": [ROW],
        "agent_name": "a",
        "num_repeats": 2,
        "limit": None,
        "overrides": {},
    }
    write_manifest(out, build_manifest(**kwargs))  # type: ignore[arg-type]
    check_resume(out, build_manifest(**kwargs))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="num_repeats=2, this run has num_repeats=3"):
        check_resume(out, build_manifest(**{**kwargs, "num_repeats": 3}))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="input_rows_sha256"):
        check_resume(out, build_manifest(**{**kwargs, "rows": [{**ROW, "answer": 2}]}))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no out2.jsonl.manifest.json"):
        check_resume(tmp_path / "out2.jsonl", build_manifest(**kwargs))  # type: ignore[arg-type]


def test_missing_input_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"nope.jsonl: input file not found$"):
        read_rows(tmp_path / "nope.jsonl")
