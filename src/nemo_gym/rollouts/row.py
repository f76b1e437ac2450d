"""The output row of one rollout as a type: :class:`RolloutRow`, its literals, and its status rule.

A row is the input row overlaid with what ``/verify`` answered (``response``, ``reward`` and the
verifier's own fields, kept as extra fields), plus Gym's bookkeeping under ``_ng_`` keys:

* ``_ng_schema_version``: version of this layout (:data:`ROW_SCHEMA_VERSION`).
* ``_ng_status`` (:data:`RolloutStatus`): ``"completed"`` (the model finished and was verified),
  ``"truncated"`` (verified, but the trajectory was cut: ``max_steps`` reached or the model's
  output truncated) or ``"failed"`` (no reward: ``reward`` is ``null``).
* ``_ng_failure``: ``{"kind", "message", "step"}`` for failed and truncated rows, else ``null``;
  ``kind`` is a :data:`FailureKind` (a :data:`FailedKind` on failed rows, a
  :data:`TruncationKind` on truncated ones).
* ``_ng_num_steps``: model calls made (``null`` when the rollout failed before any);
  ``_ng_elapsed_s``: wall time of the rollout.
* ``_ng_task_index`` / ``_ng_repeat_index``: which input row and which repeat (set by the
  collector).
* Set by ``ng_collect_rollouts`` (``inputs.identify``), absent from rows an agent returns to
  other callers: ``_ng_rollout_index`` (NeMo Gym's name for the repeat), ``_ng_run_key`` and
  ``_ng_attempt_index`` (which run wrote the row, which attempt; ``resume``), ``_ng_group_id``
  and ``_ng_rollout_id``.

A field may be added (optional) within a version; renaming, removing or retyping one needs a new
:data:`ROW_SCHEMA_VERSION` and a new frozen example beside the old ones.

:func:`row_status` is the one reading of a row's status, used by the collector (``collect``),
the summary (``summary``), the viewer and the exports. ``records`` builds rows in this layout;
the frozen example ``tests/unit/data/row_v1.json`` pins version 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

ROW_SCHEMA_VERSION = 1
STATUS_KEY = "_ng_status"
FAILURE_KEY = "_ng_failure"

RolloutStatus = Literal["completed", "truncated", "failed"]
#: Why a rollout has no reward.
FailedKind = Literal[
    "model_error",  # the model server answered an error or could not be reached
    "tool_error",  # a tool call could not be made at all (not a tool's own error body)
    "seed_error",  # the environment's seed_session failed
    "verifier_error",  # /verify failed or gave no numeric reward
    "timeout",  # a deadline passed
    "agent_error",  # the agent answered an error, invalid JSON, or could not be reached
    "invalid_input",  # the row's responses_create_params were rejected
]
#: Why a verified trajectory was cut short.
TruncationKind = Literal["max_steps", "truncated"]
FailureKind = FailedKind | TruncationKind
#: How an agent's loop ended: a final answer, or a :data:`TruncationKind`.
StopReason = Literal["completed"] | TruncationKind

ROLLOUT_STATUSES: tuple[RolloutStatus, ...] = get_args(RolloutStatus)
FAILED_KINDS: tuple[FailedKind, ...] = get_args(FailedKind)
TRUNCATION_KINDS: tuple[TruncationKind, ...] = get_args(TruncationKind)


def numeric_reward(row: Mapping[str, Any]) -> float | None:
    """The row's ``reward`` if it is a finite number (``true``/``false`` are not rewards)."""
    reward = row.get("reward")
    if isinstance(reward, bool) or not isinstance(reward, (int, float)):
        return None
    return float(reward) if math.isfinite(reward) else None


def row_status(row: Mapping[str, Any]) -> RolloutStatus:
    """The status of a row, however it was written.

    The rule, the same everywhere: an explicit ``_ng_status`` (one of :data:`ROLLOUT_STATUSES`)
    wins; otherwise (a row from NeMo Gym or another tool, or an unknown status) a numeric
    ``reward`` makes it ``"completed"`` and anything else ``"failed"``, never scored 0.
    """
    status = row.get(STATUS_KEY)
    if status in ROLLOUT_STATUSES:
        return status  # type: ignore[no-any-return]  # checked against the literal's values
    return "completed" if numeric_reward(row) is not None else "failed"


class FailureInfo(BaseModel):
    """``_ng_failure``: why a row failed or was truncated, and at which model call."""

    model_config = ConfigDict(extra="forbid")

    kind: FailureKind
    message: str
    step: int | None = None


class RolloutRow(BaseModel):
    """One output row, schema version 1; fields of the input row and the verifier are extras.

    Validation also checks that the status agrees with the rest: a failed row has no reward and
    a :data:`FailedKind`; a truncated row has a reward and a :data:`TruncationKind`; a completed
    row has a reward and no failure.
    """

    model_config = ConfigDict(extra="allow")  # validated by alias (`_ng_...`) only

    responses_create_params: dict[str, Any]
    response: dict[str, Any] | None
    reward: float | None = Field(strict=True, allow_inf_nan=False)
    schema_version: Literal[1] = Field(alias="_ng_schema_version")
    status: RolloutStatus = Field(alias=STATUS_KEY)
    failure: FailureInfo | None = Field(alias=FAILURE_KEY)
    num_steps: int | None = Field(alias="_ng_num_steps", ge=0)
    elapsed_s: float = Field(alias="_ng_elapsed_s", ge=0)
    task_index: int = Field(alias="_ng_task_index", ge=0)
    repeat_index: int = Field(alias="_ng_repeat_index", ge=0)
    rollout_index: int | None = Field(default=None, alias="_ng_rollout_index", ge=0)
    run_key: str | None = Field(default=None, alias="_ng_run_key")
    attempt_index: int | None = Field(default=None, alias="_ng_attempt_index", ge=0)
    group_id: str | None = Field(default=None, alias="_ng_group_id")
    rollout_id: str | None = Field(default=None, alias="_ng_rollout_id")

    @model_validator(mode="after")
    def _status_agrees(self) -> RolloutRow:
        kind = self.failure.kind if self.failure else None
        if self.status == "failed":
            if self.reward is not None or kind not in FAILED_KINDS:
                raise ValueError("a failed row has reward null and a failure of a failed kind")
        elif self.reward is None:
            raise ValueError(f"a {self.status} row has a numeric reward")
        elif self.status == "truncated" and kind not in TRUNCATION_KINDS:
            raise ValueError(f"a truncated row has a failure of kind {TRUNCATION_KINDS}")
        elif self.status == "completed" and self.failure is not None:
            raise ValueError("a completed row has _ng_failure null")
        return self

    def to_row(self) -> dict[str, Any]:
        """The row as written to the output JSONL (``_ng_`` keys, extras kept, unset optional
        fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)
