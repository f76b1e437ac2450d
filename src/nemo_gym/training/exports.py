"""Rollout files to what trainers read: token samples, TRL, verl, SFT messages, DPO pairs.

``ng_export`` (``cli/export.py``) is this module over a file. Formats:

* ``tokens``: :class:`~nemo_gym.training.samples.TokenSample` as JSON (input ids, loss mask,
  log-probs, turn spans, reward, group and rollout ids);
* ``trl``: a ``GRPOTrainer`` ``rollout_func`` result per rollout: ``prompt_ids``,
  ``completion_ids``, ``logprobs``, ``env_mask`` (1 = a token the model chose), plus ``reward``;
* ``verl``: verl's agent-loop output: ``prompt_ids``, ``response_ids``, ``response_mask``,
  ``response_logprobs``, ``reward_score``, ``num_turns`` (user, assistant and tool turns);
* ``sft``: chat ``messages`` (and ``tools``) of rollouts whose reward reaches ``min_reward``;
* ``dpo``: per task, its best rollout against its worst (``prompt``, ``chosen``, ``rejected``
  as messages), when their rewards differ.

Every row is accounted for in the :class:`ExportReport`: exported, failed rows dropped, rows
below the SFT threshold, and rows rejected with the reason (file and line named).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from nemo_gym.core.errors import InputDataError
from nemo_gym.protocol.chat_conversion import ConversionError, input_to_messages
from nemo_gym.training.samples import (
    FailedRowPolicy,
    SampleError,
    build_sample,
    row_ids,
    row_reward,
)

ExportFormat = Literal["tokens", "trl", "verl", "sft", "dpo"]
FORMATS: tuple[ExportFormat, ...] = ("tokens", "trl", "verl", "sft", "dpo")


@dataclass
class ExportReport:
    """What happened to every row read."""

    read: int = 0
    exported: int = 0
    failed_dropped: int = 0
    below_threshold: int = 0
    unpaired: int = 0  # dpo: rows of a task whose rollouts all scored the same, or in between
    records: int = 0
    rejected: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{self.records} records from {self.exported} of {self.read} rows"]
        if self.failed_dropped:
            parts.append(f"{self.failed_dropped} failed rows dropped")
        if self.below_threshold:
            parts.append(f"{self.below_threshold} below min_reward")
        if self.unpaired:
            parts.append(f"{self.unpaired} not in a DPO pair")
        if self.rejected:
            parts.append(f"{len(self.rejected)} rows rejected")
        return ", ".join(parts)


def read_rollouts(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for each row of a rollout file; ``where`` is ``file:line``.

    Raises:
        InputDataError: a line that is not a JSON object (file and line named).
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InputDataError(str(path), None, "rollout file not found") from None
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InputDataError(str(path), line_no, f"not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise InputDataError(str(path), line_no, "a row must be a JSON object")
            yield f"{path}:{line_no}", row


def _messages(row: dict[str, Any], where: str) -> tuple[list[dict[str, Any]], int]:
    """All chat messages of a rollout, and how many of them were its prompt."""
    params = row.get("responses_create_params") or {}
    try:
        prompt = input_to_messages(params.get("input") or [], params.get("instructions"))
        output = (row.get("response") or {}).get("output") or []
        whole = input_to_messages(
            [*(_as_items(params.get("input"))), *output], params.get("instructions")
        )
    except (ConversionError, KeyError, AttributeError) as exc:
        raise SampleError(f"{where}: cannot turn the rollout into chat messages: {exc}") from None
    return [_clean(m) for m in whole], len(prompt)


def _as_items(given: Any) -> list[Any]:
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return list(given or [])


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message without the token fields a training-mode server attached."""
    return {k: v for k, v in message.items() if not k.startswith(("prompt_", "generation_"))}


def _token_record(fmt: ExportFormat, row: dict[str, Any], reward: float, where: str) -> Any:
    sample = build_sample(row, reward, where)
    if fmt == "tokens":
        return sample.as_dict()
    cut = sample.prompt_length
    if fmt == "trl":
        return {
            "prompt_ids": sample.input_ids[:cut],
            "completion_ids": sample.input_ids[cut:],
            "logprobs": sample.log_probs[cut:],
            "env_mask": sample.loss_mask[cut:],
            "reward": reward,
            "group_id": sample.group_id,
            "rollout_id": sample.rollout_id,
        }
    return {
        "prompt_ids": sample.input_ids[:cut],
        "response_ids": sample.input_ids[cut:],
        "response_mask": sample.loss_mask[cut:],
        "response_logprobs": sample.log_probs[cut:],
        "reward_score": reward,
        "num_turns": sample.messages_in + sample.num_model_turns + sample.tool_outputs,
        "group_id": sample.group_id,
        "rollout_id": sample.rollout_id,
    }


def export(
    rows: Iterable[tuple[str, dict[str, Any]]],
    fmt: ExportFormat,
    *,
    failed: FailedRowPolicy,
    min_reward: float = 1.0,
) -> tuple[list[Any], ExportReport]:
    """Turn rows into records of ``fmt``; every row is counted in the report."""
    report = ExportReport()
    records: list[Any] = []
    groups: dict[str, list[tuple[float, str, dict[str, Any]]]] = collections.defaultdict(list)
    for where, row in rows:
        report.read += 1
        try:
            reward = row_reward(row, failed, where)
            if reward is None:
                report.failed_dropped += 1
                continue
            if fmt in ("tokens", "trl", "verl"):
                records.append(_token_record(fmt, row, reward, where))
            elif fmt == "sft":
                if reward < min_reward:
                    report.below_threshold += 1
                    continue
                messages, _ = _messages(row, where)
                tools = (row.get("responses_create_params") or {}).get("tools")
                records.append({"messages": messages, "tools": tools or [], "reward": reward})
            else:
                group, _ = row_ids(row, where)
                groups[group].append((reward, where, row))
                continue
        except SampleError as exc:
            report.rejected.append(str(exc))
            continue
        report.exported += 1
    for group, members in groups.items():
        pair = _dpo_pair(group, members, report)
        if pair is not None:
            records.append(pair)
        report.unpaired += len(members) - (2 if pair is not None else 0)
    report.records = len(records)
    return records, report


def _dpo_pair(
    group: str, members: list[tuple[float, str, dict[str, Any]]], report: ExportReport
) -> dict[str, Any] | None:
    """The best rollout of a task against its worst (first of equals), or None if all tie."""
    best = max(members, key=lambda m: m[0])
    worst = min(members, key=lambda m: m[0])
    if best[0] == worst[0]:
        return None
    try:
        chosen, n_prompt = _messages(best[2], best[1])
        rejected, _ = _messages(worst[2], worst[1])
    except SampleError as exc:
        report.rejected.append(str(exc))
        return None
    report.exported += 2
    return {
        "prompt": chosen[:n_prompt],
        "chosen": chosen[n_prompt:],
        "rejected": rejected[n_prompt:],
        "chosen_reward": best[0],
        "rejected_reward": worst[0],
        "group_id": group,
    }
