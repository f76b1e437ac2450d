"""Building output rows: a verified rollout's row, a failed one's, and the failure it records.

The layout (and the status rule) is :mod:`nemo_gym.rollouts.row`; agents build their rows here
(:func:`finished_row`, :func:`failed_row`, raising :class:`RolloutFailure` inside the loop), and
the collector builds the rows of rollouts the agent could not answer with :func:`failed_row`.
"""

from __future__ import annotations

import time
from typing import Any

from nemo_gym.rollouts.row import (
    FAILURE_KEY,
    ROW_SCHEMA_VERSION,
    STATUS_KEY,
    FailedKind,
    FailureKind,
    StopReason,
)

__all__ = [
    "FAILURE_KEY",
    "ROW_SCHEMA_VERSION",
    "STATUS_KEY",
    "RolloutFailure",
    "failed_row",
    "failure_info",
    "finished_row",
]


class RolloutFailure(Exception):
    """Raised inside an agent to end a rollout as failed; becomes the row's ``_ng_failure``."""

    def __init__(
        self,
        kind: FailedKind,
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


def failure_info(kind: FailureKind, message: str, step: int | None = None) -> dict[str, Any]:
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
    row: dict[str, Any], verified: dict[str, Any], stop: StopReason, steps: int, started: float
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
