"""Which runs an output file holds, and what a resumed run must still do.

Several collections may append to one output file (the guide says concurrent collectors are
safe), so every row carries the key of the run that produced it (``_ng_run_key``: a hash of its
manifest: input rows, agent, repeats, limit, overrides), and ``<output>.manifest.json`` lists
every run's manifest by key. A run without ``+resume`` registers its key and refuses a file
that already holds rows of the very same run (that is what ``+resume=true`` is for); a resumed
run must find its key and only ever looks at its own rows, so the rows of two inputs never mix.

On resume, a (task, repeat) whose latest row completed (or was truncated) is done; a failed
one is run again while it has had fewer than ``max_attempts`` attempts. Its failed row is moved
out of the output into ``<output stem>_failures.jsonl`` first, so that no (task, repeat) appears
twice in the output; the new row's ``_ng_attempt_index`` counts the attempts. ``output.py``
provides the locking and the in-place rewrite this uses; ``cli/collect.py`` drives it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from nemo_gym.core.errors import ConfigError
from nemo_gym.rollouts.output import manifest_path, read_existing, rewrite_locked
from nemo_gym.rollouts.row import row_status

RUN_KEY = "_ng_run_key"
ATTEMPT_KEY = "_ng_attempt_index"
LEGACY_RUN = "legacy"  # rows and manifest written before run keys existed


def run_key(manifest: dict[str, Any]) -> str:
    """A short, stable hash of a run's manifest."""
    return hashlib.sha256(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def failures_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_failures.jsonl")


@contextmanager
def _registry_lock(output: Path) -> Iterator[None]:
    lock = output.with_name(output.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_runs(output: Path) -> dict[str, dict[str, Any]]:
    """The manifests of the runs in ``output``, by run key (an old single manifest: legacy)."""
    path = manifest_path(output)
    if not path.exists():
        return {}
    data = orjson.loads(path.read_bytes())
    if isinstance(data, dict) and isinstance(data.get("runs"), dict):
        return {str(k): v for k, v in data["runs"].items()}
    return {LEGACY_RUN: data} if isinstance(data, dict) else {}


def register_run(output: Path, key: str, manifest: dict[str, Any]) -> None:
    """Add this run's manifest to the file's list (safe against concurrent collectors)."""
    with _registry_lock(output):
        runs = read_runs(output)
        runs[key] = manifest
        manifest_path(output).write_bytes(
            orjson.dumps({"runs": runs}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )


def owner(row: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    """The run key of a row (rows without one belong to the legacy run)."""
    return str(row.get(RUN_KEY) or LEGACY_RUN)


def _describe(runs: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"{k}: input {m.get('input_jsonl_fpath')}, agent {m.get('agent_name')}, "
        f"num_repeats {m.get('num_repeats')}"
        for k, m in runs.items()
    )


@dataclass
class ResumePlan:
    """What a (resumed) run has and must still do."""

    key: str
    kept: list[dict[str, Any]] = field(default_factory=list)  # this run's rows that stay
    done: set[tuple[int, int]] = field(default_factory=set)  # completed or given up on
    retry: dict[tuple[int, int], int] = field(default_factory=dict)  # -> attempt index to run
    given_up: int = 0  # failed rows out of attempts
    moved: int = 0  # failed rows moved to the failures file


def _key_of(row: dict[str, Any]) -> tuple[int, int]:
    repeat = row.get("_ng_rollout_index", row.get("_ng_repeat_index"))
    return int(row.get("_ng_task_index") or 0), int(repeat or 0)


def plan_run(
    output: Path, manifest: dict[str, Any], *, resume: bool, max_attempts: int
) -> ResumePlan:
    """Register a new run, or work out what a resumed one must run (see module docstring).

    Raises:
        ConfigError: a fresh run whose rows are already in the file, or a resume that finds
            no run of this input and config in it.
    """
    key = run_key(manifest)
    runs = read_runs(output)
    if key not in runs and resume and set(runs) == {LEGACY_RUN} and runs[LEGACY_RUN] == manifest:
        key = LEGACY_RUN  # a file written before run keys: same input and config
    rows, _ = read_existing(output)
    mine = [r for r in rows if owner(r, runs) == key]
    if not resume:
        if mine:
            raise ConfigError(
                f"{output} already holds {len(mine)} rows of this very run (same input and "
                "config); add +resume=true to finish it, or collect into a new file",
                key="resume",
            )
        register_run(output, key, manifest)
        return ResumePlan(key)
    if key not in runs:
        known = _describe(runs) if runs else "none"
        raise ConfigError(
            f"cannot resume {output}: it holds no run of this input and config (runs in it: "
            f"{known}); collect into a new file instead",
            key="resume",
        )
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for row in mine:
        latest[_key_of(row)] = row
    plan = ResumePlan(key)
    for task, row in latest.items():
        if row_status(row) != "failed":
            plan.done.add(task)
            continue
        attempts = int(row.get(ATTEMPT_KEY) or 0) + 1
        if attempts < max_attempts:
            plan.retry[task] = attempts
        else:
            plan.done.add(task)
            plan.given_up += 1
    plan.moved = rewrite_locked(
        output,
        keep=lambda r: not (owner(r, runs) == key and _key_of(r) in plan.retry),
        moved_to=failures_path(output),
    )
    plan.kept = [r for r in latest.values() if _key_of(r) not in plan.retry]
    return plan
