"""The output row of one rollout, and how a failure is recorded on it.

A row is the input row, overlaid with what ``/verify`` answered (``response``, ``reward`` and the
verifier's fields), plus Gym's bookkeeping under ``_ng_`` keys:

* ``_ng_schema_version``: version of this layout (:data:`ROW_SCHEMA_VERSION`).
* ``_ng_status``: ``"completed"`` (the model finished and was verified), ``"truncated"`` (verified,
  but the trajectory was cut: ``max_steps`` reached or the model's output truncated) or
  ``"failed"`` (no reward: ``reward`` is ``null``).
* ``_ng_failure``: ``{"kind", "message", "step"}`` for failed and truncated rows, else ``null``.
  Kinds: ``model_error``, ``tool_error``, ``seed_error``, ``verifier_error``, ``timeout``,
  ``agent_error``, ``invalid_input`` (failed); ``max_steps``, ``truncated`` (truncated).
* ``_ng_num_steps``: model calls made; ``_ng_elapsed_s``: wall time of the rollout.
* ``_ng_task_index`` / ``_ng_repeat_index``: which input row and which repeat (set by the
  collector).
"""

from __future__ import annotations

import time
from typing import Any

ROW_SCHEMA_VERSION = 1
STATUS_KEY = "_ng_status"
FAILURE_KEY = "_ng_failure"


class RolloutFailure(Exception):
    """Raised inside an agent to end a rollout as failed; becomes the row's ``_ng_failure``."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        step: int | None = None,
        partial: dict[str, Any] | None = None,
        outputs: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.step = step
        self.partial_response = dict(partial or {})
        if outputs is not None:
            self.partial_response["output"] = list(outputs)


def failure_info(kind: str, message: str, step: int | None = None) -> dict[str, Any]:
    """The ``_ng_failure`` object."""
    return {"kind": kind, "message": message[:4000], "step": step}


def failed_row(
    row: dict[str, Any],
    failure: RolloutFailure,
    started: float,
    partial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A row for a rollout that could not be scored (``reward`` is ``null``)."""
    out = dict(row)
    out["response"] = partial or failure.partial_response or None
    out["reward"] = None
    out["_ng_schema_version"] = ROW_SCHEMA_VERSION
    out[STATUS_KEY] = "failed"
    out[FAILURE_KEY] = failure_info(failure.kind, failure.message, failure.step)
    out["_ng_num_steps"] = failure.step
    out["_ng_elapsed_s"] = round(time.monotonic() - started, 4)
    return out


def finished_row(
    row: dict[str, Any], verified: dict[str, Any], stop: str, steps: int, started: float
) -> dict[str, Any]:
    """A row for a verified rollout; ``stop`` is ``completed``, ``max_steps`` or ``truncated``."""
    out = {**row, **verified}
    out["_ng_schema_version"] = ROW_SCHEMA_VERSION
    if stop == "completed":
        out[STATUS_KEY] = "completed"
        out[FAILURE_KEY] = None
    else:
        out[STATUS_KEY] = "truncated"
        message = (
            "stopped after max_steps model calls without a final answer"
            if stop == "max_steps"
            else "the model's response was truncated"
        )
        out[FAILURE_KEY] = failure_info(stop, message, steps)
    out["_ng_num_steps"] = steps
    out["_ng_elapsed_s"] = round(time.monotonic() - started, 4)
    return out
