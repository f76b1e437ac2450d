"""Reading task rows for collection: validated up front, with file and line in every error.

Every row is read and checked before any rollout starts: it must be a JSON object with a
``responses_create_params`` object of the right shape (known keys, an ``input``) after the
command-line overrides are applied; see ``nemo_gym.protocol.shapes``. Blank lines are
skipped; a file with no rows at all is an error (a run over nothing is a mistake, not a
success). Rows are then repeated in the ``aabbcc`` order (each row ``num_repeats`` times in a
row) and tagged with ``_ng_task_index`` (0-based input row) and ``_ng_repeat_index``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nemo_gym.core import jsonbytes
from nemo_gym.core.errors import InputDataError
from nemo_gym.protocol.shapes import shape_error


@dataclass(frozen=True)
class Task:
    """One rollout to run: the row to send and its place in the run."""

    task_index: int
    repeat_index: int
    row: dict[str, Any]

    @property
    def key(self) -> tuple[int, int]:
        return (self.task_index, self.repeat_index)

    @property
    def body(self) -> bytes:
        """The row as the JSON sent to the agent's ``/run``."""
        return jsonbytes.dumps(self.row)

    def packed(self) -> PackedTask:
        """This task with its row as JSON bytes (see :class:`PackedTask`)."""
        ref = self.row.get("agent_ref")
        agent = ref.get("name") if isinstance(ref, Mapping) else None
        return PackedTask(
            self.task_index, self.repeat_index, jsonbytes.dumps(self.row), agent_name=agent
        )


@dataclass(frozen=True, slots=True)
class PackedTask:
    """A task whose row waits as the JSON bytes it is sent as, decoded only when needed.

    A parsed row costs a few KB of Python objects, its JSON a third of that in one object;
    the collector keeps every task of a run queued, so a run of 32,768 rows held 77 MB of
    parsed rows (and each ``/run`` re-encoded its row) before tasks were packed.
    """

    task_index: int
    repeat_index: int
    body: bytes
    agent_name: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.task_index, self.repeat_index)

    @property
    def row(self) -> dict[str, Any]:
        """A new dict of the row (mutating it changes nothing here)."""
        row: dict[str, Any] = orjson.loads(self.body)
        return row


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in, recursively for nested mappings."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_rows(
    path: Path, *, limit: int | None = None, overrides: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Read and validate the first ``limit`` rows of a JSONL file.

    Raises:
        InputDataError: naming the file and the 1-based line of the first bad row, or the file
            when it is missing, unreadable, a directory or has no rows.
    """
    label = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InputDataError(label, None, "input file not found") from None
    except IsADirectoryError:
        raise InputDataError(label, None, "is a directory, not a JSONL file") from None
    except PermissionError:
        raise InputDataError(label, None, "cannot be read (permission denied)") from None
    rows: list[dict[str, Any]] = []
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            if limit and len(rows) >= limit:
                break
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InputDataError(label, line_no, f"not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise InputDataError(label, line_no, "a row must be a JSON object")
            params = row.get("responses_create_params")
            if not isinstance(params, dict):
                raise InputDataError(label, line_no, "missing the object `responses_create_params`")
            if overrides:
                params = row["responses_create_params"] = deep_merge(params, overrides)
            if (problem := shape_error(params)) is not None:
                raise InputDataError(label, line_no, f"responses_create_params.{problem}")
            rows.append(row)
    if not rows:
        raise InputDataError(
            label, None, "has no rows: the file is empty (one JSON object per line is expected)"
        )
    return rows


def expand(rows: list[dict[str, Any]], num_repeats: int | list[int]) -> list[Task]:
    """Repeat each row ``num_repeats`` times in a row (``abc`` -> ``aabbcc``); a list gives
    each row its own count."""
    counts = num_repeats if isinstance(num_repeats, list) else [num_repeats] * len(rows)
    tasks = []
    for task_index, (row, count) in enumerate(zip(rows, counts, strict=True)):
        for repeat_index in range(count):
            tagged = {**row, "_ng_task_index": task_index, "_ng_repeat_index": repeat_index}
            tasks.append(Task(task_index, repeat_index, tagged))
    return tasks


def identify(task: Task, run_key: str, attempt: int) -> None:
    """Stamp a task's row with the ids trainers and resume rely on.

    ``_ng_rollout_index`` (NeMo Gym's name for the repeat), ``_ng_run_key`` (the run that
    produced the row), ``_ng_attempt_index``, ``_ng_group_id`` (one per task of a run: the group
    GRPO normalises rewards over) and ``_ng_rollout_id`` (unique per attempt).
    """
    group = f"{run_key}-t{task.task_index}"
    task.row.update(
        {
            "_ng_rollout_index": task.repeat_index,
            "_ng_run_key": run_key,
            "_ng_attempt_index": attempt,
            "_ng_group_id": group,
            "_ng_rollout_id": f"{group}-r{task.repeat_index}-a{attempt}",
        }
    )
