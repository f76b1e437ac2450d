"""nemo_gym.training: rows to token samples and every export format, on hand-checked rows."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from nemo_gym.training import FailedRowPolicy, SampleError, build_sample, export


def two_turn_row(
    task: int = 0, repeat: int = 0, reward: float | None = 1.0, status: str = "completed"
) -> dict[str, Any]:
    """A weather rollout: a tool call (first two tokens grammar-forced), its output, an answer."""
    return {
        "responses_create_params": {
            "input": [
                {"role": "system", "content": "You are a weather bot."},
                {"role": "user", "content": "Weather in Paris?"},
            ],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {}}],
        },
        "response": {
            "output": [
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                    "prompt_token_ids": [1, 2, 3],
                    "generation_token_ids": [10, 11, 12],
                    "generation_log_probs": [-0.1, -0.2, -0.3],
                    "generation_grammar_forced": [1, 1, 0],
                },
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}],
                    "prompt_token_ids": [1, 2, 3, 10, 11, 12, 20, 21],
                    "generation_token_ids": [30, 31],
                    "generation_log_probs": [-0.5, -0.6],
                },
            ]
        },
        "reward": reward,
        "_ng_status": status,
        "_ng_task_index": task,
        "_ng_repeat_index": repeat,
    }


def rows(*items: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"r.jsonl:{i + 1}", row) for i, row in enumerate(items)]


def test_turns_are_laid_end_to_end_with_masks_and_spans() -> None:
    sample = build_sample(two_turn_row(), 1.0, "r.jsonl:1")
    assert sample.input_ids == [1, 2, 3, 10, 11, 12, 20, 21, 30, 31]
    # prompt, forced, forced, chosen, tool output + glue, chosen, chosen
    assert sample.loss_mask == [0, 0, 0, 0, 0, 1, 0, 0, 1, 1]
    assert sample.log_probs == [0, 0, 0, -0.1, -0.2, -0.3, 0, 0, -0.5, -0.6]
    assert sample.turn_spans == [(3, 6), (8, 10)]
    assert (sample.prompt_length, sample.group_id, sample.rollout_id) == (3, "task-0", "task-0-r0")


def test_a_prompt_that_does_not_extend_the_history_is_rejected_with_its_position() -> None:
    row = two_turn_row()
    row["response"]["output"][2]["prompt_token_ids"] = [1, 2, 3, 10, 99, 12, 20, 21]
    with pytest.raises(SampleError, match=r"r.jsonl:7: response.output.2: .*position 4 of 6"):
        build_sample(row, 1.0, "r.jsonl:7")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("generation_log_probs", [-0.5, math.nan], "NaN"),
        ("generation_log_probs", [-0.5], "2 generated tokens but 1 log-probs"),
        ("prompt_token_ids", None, "without prompt ids"),
    ],
)
def test_bad_token_data_is_rejected(field: str, value: Any, reason: str) -> None:
    row = two_turn_row()
    row["response"]["output"][2][field] = value
    with pytest.raises(SampleError, match=reason):
        build_sample(row, 1.0, "r.jsonl:1")


def test_trl_and_verl_records() -> None:
    (trl,), _ = export(rows(two_turn_row()), "trl", failed=FailedRowPolicy())
    assert trl["prompt_ids"] == [1, 2, 3]
    assert trl["completion_ids"] == [10, 11, 12, 20, 21, 30, 31]
    assert trl["env_mask"] == [0, 0, 1, 0, 0, 1, 1]
    assert trl["logprobs"] == [-0.1, -0.2, -0.3, 0, 0, -0.5, -0.6]
    (verl,), _ = export(rows(two_turn_row()), "verl", failed=FailedRowPolicy())
    assert verl["response_ids"] == trl["completion_ids"]
    assert verl["response_mask"] == trl["env_mask"]
    assert verl["response_logprobs"] == trl["logprobs"]
    # system + user, two assistant turns, one tool turn
    assert (verl["reward_score"], verl["num_turns"]) == (1.0, 5)


def test_failed_rows_are_dropped_or_scored_as_the_user_says_never_silently() -> None:
    failed = two_turn_row(task=1, reward=None, status="failed")
    records, report = export(rows(two_turn_row(), failed), "tokens", failed=FailedRowPolicy())
    assert len(records) == 1 and report.failed_dropped == 1
    assert "1 failed rows dropped" in report.line()
    records, report = export(
        rows(two_turn_row(), failed), "tokens", failed=FailedRowPolicy.parse("score:-1")
    )
    assert [r["reward"] for r in records] == [1.0, -1.0] and report.failed_dropped == 0
    with pytest.raises(ValueError, match="'drop' or 'score:<number>'"):
        FailedRowPolicy.parse("zero")


def test_rows_without_token_data_are_reported_with_file_and_line() -> None:
    row = two_turn_row()
    for item in row["response"]["output"]:
        item.pop("generation_token_ids", None)
    records, report = export(rows(two_turn_row(), row), "trl", failed=FailedRowPolicy())
    assert len(records) == 1
    assert report.rejected == [
        "r.jsonl:2: no output item carries token ids (collect in training mode)"
    ]


def test_sft_keeps_rollouts_at_the_threshold_as_chat_messages() -> None:
    records, report = export(
        rows(two_turn_row(reward=1.0), two_turn_row(task=1, reward=0.5)),
        "sft",
        failed=FailedRowPolicy(),
        min_reward=1.0,
    )
    assert report.below_threshold == 1 and len(records) == 1
    messages = records[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[4]["content"] == "Sunny."
    assert not any(k.startswith("generation_") for m in messages for k in m)


def test_dpo_pairs_the_best_and_worst_rollout_of_each_task() -> None:
    group0 = [two_turn_row(0, r, reward) for r, reward in enumerate((0.5, 1.0, 0.0))]
    group0[2]["response"]["output"][2]["content"][0]["text"] = "Rainy."
    tied = [two_turn_row(1, r, 1.0) for r in range(2)]
    records, report = export(rows(*group0, *tied), "dpo", failed=FailedRowPolicy())
    assert len(records) == 1 and report.unpaired == 3
    pair = records[0]
    assert (pair["chosen_reward"], pair["rejected_reward"], pair["group_id"]) == (
        1.0,
        0.0,
        "task-0",
    )
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"]
    assert pair["chosen"][-1]["content"] == "Sunny." and pair["rejected"][-1]["content"] == "Rainy."


def test_ng_export_command_writes_records_and_exits_3_when_rows_were_rejected(
    tmp_path: Path,
) -> None:
    bad = two_turn_row(task=2)
    bad["response"]["output"][2]["prompt_token_ids"] = [9]
    src = tmp_path / "r.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in (two_turn_row(), bad)))
    out = tmp_path / "out" / "trl.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nemo_gym.cli.export import main; main()",
            f"+input_jsonl_fpath={src}",
            f"+output_jsonl_fpath={out}",
            "+format=trl",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert f"rejected: {src}:2: response.output.2:" in done.stderr
    assert "trl: 1 records from 1 of 2 rows, 1 rows rejected" in done.stdout
    assert [orjson.loads(line)["prompt_ids"] for line in out.read_bytes().splitlines()] == [
        [1, 2, 3]
    ]
