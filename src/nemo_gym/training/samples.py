"""Rollout rows to token-level training samples: what a policy-gradient step consumes.

A row collected in training mode carries, on the last output item of each model turn, the
turn's ``prompt_token_ids``, ``generation_token_ids`` and ``generation_log_probs`` (and, from
``local_model``, ``generation_grammar_forced``). :func:`build_sample` lays the turns end to end:

* every turn's prompt must start with all tokens seen so far (the previous prompt plus what was
  generated), the check NeMo RL applies; the tokens it adds (tool output, the next user message,
  chat-template glue) are the environment's, masked out;
* generated tokens are the model's (``loss_mask`` 1) except those the grammar forced (0);
* log-probs are kept per token (0.0 where the model did not sample), NaN rejected.

A row that cannot become a sample raises :class:`SampleError` naming the row and the reason;
exports (``exports.py``) count and report those, never train on them silently. Failed rows
have no reward: :class:`FailedRowPolicy` says whether they are dropped or scored with a value
the user names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nemo_gym.rollouts.records import STATUS_KEY


class SampleError(ValueError):
    """A row that cannot be turned into a training sample, and why."""


@dataclass(frozen=True)
class FailedRowPolicy:
    """What to do with a failed row: drop it (default), or score it with ``score``."""

    score: float | None = None

    @classmethod
    def parse(cls, text: str) -> FailedRowPolicy:
        """``"drop"`` or ``"score:<number>"`` (e.g. ``score:0``)."""
        if text == "drop":
            return cls()
        name, _, value = text.partition(":")
        if name == "score":
            try:
                return cls(score=float(value))
            except ValueError:
                pass
        raise ValueError(f"failed-row policy {text!r}: use 'drop' or 'score:<number>'")


@dataclass
class TokenSample:
    """One rollout as one token sequence."""

    input_ids: list[int]
    loss_mask: list[int]  # 1 on tokens the model sampled and chose, 0 elsewhere
    log_probs: list[float]  # the sampler's log-prob on sampled tokens, 0.0 elsewhere
    turn_spans: list[tuple[int, int]]  # [start, end) of each model turn's generated tokens
    prompt_length: int  # tokens of the first prompt
    reward: float
    group_id: str  # rollouts of one task share it (GRPO's group)
    rollout_id: str
    num_model_turns: int
    messages_in: int = 0  # input messages (user/system) before the first model turn
    tool_outputs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_ids": self.input_ids,
            "loss_mask": self.loss_mask,
            "log_probs": self.log_probs,
            "turn_spans": [list(span) for span in self.turn_spans],
            "prompt_length": self.prompt_length,
            "reward": self.reward,
            "group_id": self.group_id,
            "rollout_id": self.rollout_id,
            "num_model_turns": self.num_model_turns,
        }


def row_ids(row: dict[str, Any], where: str) -> tuple[str, str]:
    """(group id, rollout id) of a row: Gym's ids when present, else built from its indices."""
    task = row.get("_ng_task_index")
    repeat = row.get("_ng_rollout_index", row.get("_ng_repeat_index"))
    group = row.get("_ng_group_id") or (f"task-{task}" if task is not None else None)
    if group is None:
        raise SampleError(f"{where}: no _ng_group_id or _ng_task_index to group rollouts by")
    rollout = row.get("_ng_rollout_id") or f"{group}-r{repeat if repeat is not None else 0}"
    return str(group), str(rollout)


def row_reward(row: dict[str, Any], policy: FailedRowPolicy, where: str) -> float | None:
    """The reward to train on, or None when the row is dropped by ``policy``."""
    if row.get(STATUS_KEY) == "failed" or row.get("reward") is None:
        return policy.score
    reward = row["reward"]
    if isinstance(reward, bool) or not isinstance(reward, (int, float)) or math.isnan(reward):
        raise SampleError(f"{where}: reward {reward!r} is not a number")
    return float(reward)


def build_sample(row: dict[str, Any], reward: float, where: str) -> TokenSample:
    """Lay a row's model turns end to end (see the module docstring)."""
    output = (row.get("response") or {}).get("output") or []
    ids: list[int] = []
    mask: list[int] = []
    log_probs: list[float] = []
    spans: list[tuple[int, int]] = []
    prompt_length = 0
    tool_outputs = sum(1 for item in output if item.get("type") == "function_call_output")
    for index, item in enumerate(output):
        generated = item.get("generation_token_ids")
        if not generated:
            continue
        turn = f"{where}: response.output.{index}"
        prompt = item.get("prompt_token_ids")
        lps = item.get("generation_log_probs")
        if not isinstance(prompt, list) or not isinstance(lps, list):
            raise SampleError(f"{turn}: generation_token_ids without prompt ids and log-probs")
        if len(lps) != len(generated):
            raise SampleError(f"{turn}: {len(generated)} generated tokens but {len(lps)} log-probs")
        if any(not isinstance(lp, (int, float)) or math.isnan(lp) for lp in lps):
            raise SampleError(f"{turn}: generation_log_probs holds NaN or a non-number")
        if prompt[: len(ids)] != ids:
            at = next(
                (i for i, (a, b) in enumerate(zip(prompt, ids, strict=False)) if a != b),
                min(len(prompt), len(ids)),
            )
            raise SampleError(
                f"{turn}: prompt_token_ids does not extend the tokens so far (differs at "
                f"position {at} of {len(ids)}); the history was re-tokenised"
            )
        if not spans:
            prompt_length = len(prompt)
        new_prompt = prompt[len(ids) :]
        ids += new_prompt
        mask += [0] * len(new_prompt)
        log_probs += [0.0] * len(new_prompt)
        forced = item.get("generation_grammar_forced") or [0] * len(generated)
        if len(forced) != len(generated):
            raise SampleError(f"{turn}: generation_grammar_forced does not match the tokens")
        start = len(ids)
        ids += generated
        mask += [0 if f else 1 for f in forced]
        log_probs += [float(lp) for lp in lps]
        spans.append((start, len(ids)))
    if not spans:
        raise SampleError(f"{where}: no output item carries token ids (collect in training mode)")
    group, rollout = row_ids(row, where)
    params = row.get("responses_create_params") or {}
    given = params.get("input")
    messages_in = 1 if isinstance(given, str) else len(given or [])
    return TokenSample(
        input_ids=ids,
        loss_mask=mask,
        log_probs=log_probs,
        turn_spans=spans,
        prompt_length=prompt_length,
        reward=reward,
        group_id=group,
        rollout_id=rollout,
        num_model_turns=len(spans),
        messages_in=messages_in,
        tool_outputs=tool_outputs,
    )
