"""Merging the files of a sharded collection into the file an unsharded run would have written.

:func:`load_shards` reads every shard file with its record (``rollouts.sharding``) and refuses,
naming the file, anything that would make the merge dishonest: a shard missing, shards of
different runs or inputs, a unit in two shards or in a shard it was not given, a unit given to
a shard but absent from its file (resume that shard first), an unparseable line. Failed rows are
units present (they are counted, and resuming their shard retries them). :func:`write_merged`
writes the rows sorted by (task, repeat), with the run's manifest, so that the merged file is
the file an unsharded run writes (``+resume=true`` on it works) and a re-merge after resuming a
shard replaces it. ``cli/merge.py`` then recomputes the summary and the aggregate metrics.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from nemo_gym.core.errors import ConfigError
from nemo_gym.rollouts.output import read_existing
from nemo_gym.rollouts.resume import failures_path, owner, read_runs, register_run
from nemo_gym.rollouts.sharding import ShardRecord, read_record, shard_path, unsharded_path

SHOWN = 10


@dataclass
class Merged:
    """The checked union of a sharded collection."""

    run_key: str
    manifest: dict[str, Any]
    shards: list[ShardRecord]
    rows: list[dict[str, Any]] = field(default_factory=list)  # sorted by (task, repeat)
    failed_attempts: list[bytes] = field(default_factory=list)  # the shards' failures files


def unit_of(row: dict[str, Any]) -> tuple[int, int]:
    """A row's (task index, repeat index), as resume counts it."""
    repeat = row.get("_ng_rollout_index", row.get("_ng_repeat_index"))
    return int(row.get("_ng_task_index") or 0), int(repeat or 0)


def _units(units: Collection[tuple[int, int]]) -> str:
    shown = sorted(units)[:SHOWN]
    more = f" and {len(units) - SHOWN} more" if len(units) > SHOWN else ""
    return ", ".join(f"(task {t}, repeat {r})" for t, r in shown) + more


def _check_set(records: list[ShardRecord]) -> None:
    first = records[0]
    for rec in records:
        if (rec.count, rec.run_key, rec.total_units) != (
            first.count,
            first.run_key,
            first.total_units,
        ):
            raise ConfigError(
                f"{rec.file} is shard {rec.index} of {rec.count} of run {rec.run_key} "
                f"({rec.total_units} units) but {first.file} is of {first.count} shards of run "
                f"{first.run_key} ({first.total_units} units): these shards are not one "
                "collection",
                source=str(rec.file),
            )
    seen = Counter(rec.index for rec in records)
    if twice := sorted(i for i, n in seen.items() if n > 1):
        raise ConfigError(f"shard(s) {twice} given more than once", source=str(first.file))
    if missing := sorted(set(range(first.count)) - set(seen)):
        base = unsharded_path(first.file)
        names = ", ".join(shard_path(base, i, first.count).name for i in missing)
        raise ConfigError(
            f"shard(s) {missing} of {first.count} are missing ({names}); run them "
            f"(+num_shards={first.count} +shard_index=i) and merge again",
            source=str(first.file.parent),
        )
    given: set[tuple[int, int]] = set()
    for rec in records:
        if overlap := given & rec.units:
            raise ConfigError(
                f"shard {rec.index} was given units another shard has: {_units(overlap)}",
                source=str(rec.file),
            )
        given |= rec.units
    if len(given) != first.total_units:
        raise ConfigError(
            f"the shards were given {len(given)} units in all, not the run's {first.total_units}",
            source=str(first.file),
        )


def _shard_rows(rec: ShardRecord, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rows, bad = read_existing(rec.file)
    if bad:
        raise ConfigError(
            f"{bad} line(s) cannot be parsed; resume this shard (+resume=true), which cuts an "
            "unfinished last line, then merge again",
            source=str(rec.file),
        )
    runs = read_runs(rec.file)
    foreign = [r for r in rows if owner(r, runs) != rec.run_key]
    if foreign:
        raise ConfigError(
            f"{len(foreign)} rows belong to another run than {rec.run_key}", source=str(rec.file)
        )
    present = Counter(unit_of(r) for r in rows)
    if twice := {u for u, n in present.items() if n > 1}:
        raise ConfigError(f"units written twice: {_units(twice)}", source=str(rec.file))
    if stray := set(present) - rec.units:
        raise ConfigError(
            f"units this shard was not given (they belong to another shard): {_units(stray)}",
            source=str(rec.file),
        )
    if absent := rec.units - set(present):
        raise ConfigError(
            f"{len(absent)} of the shard's {len(rec.units)} units are not in the file: "
            f"{_units(absent)}; resume it (the same command with +resume=true) and merge again",
            source=str(rec.file),
        )
    return rows


def load_shards(files: list[Path]) -> Merged:
    """Read and check every shard file (see the module docstring).

    Raises:
        ConfigError: naming the shard file and what is wrong with the set.
    """
    records = sorted((read_record(f) for f in files), key=lambda r: r.index)
    _check_set(records)
    manifests: list[dict[str, Any]] = []
    for rec in records:
        runs = read_runs(rec.file)
        if rec.run_key not in runs:
            raise ConfigError(
                f"its manifest lists no run {rec.run_key} (runs: {sorted(runs)})",
                source=str(rec.file),
            )
        manifests.append(runs[rec.run_key])
    merged = Merged(records[0].run_key, manifests[0], records)
    for rec, manifest in zip(records, manifests, strict=True):
        if manifest != merged.manifest:
            raise ConfigError(
                f"its run's manifest differs from {records[0].file}'s", source=str(rec.file)
            )
        merged.rows.extend(_shard_rows(rec, manifest))
        failures = failures_path(rec.file)
        if failures.exists():
            merged.failed_attempts.append(failures.read_bytes())
    merged.rows.sort(key=unit_of)
    return merged


def check_target(output: Path, run_key: str) -> bool:
    """Whether ``output`` exists already (then it holds only an earlier merge of this run).

    Raises:
        ConfigError: ``output`` holds rows of another run.
    """
    if not output.exists():
        return False
    rows, bad = read_existing(output)
    runs = read_runs(output)
    others = {owner(r, runs) for r in rows} - {run_key}
    if bad or others:
        raise ConfigError(
            f"{output} already holds rows of other runs ({sorted(others) or 'unparseable'}); "
            "merge into a new file",
            key="+output_jsonl_fpath",
        )
    return True


def _replace(path: Path, content: bytes) -> None:
    tmp = path.with_name(path.name + f".merge-{os.getpid()}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def write_merged(merged: Merged, output: Path) -> None:
    """Write the merged rows, the run's manifest and the shards' failed attempts."""
    output.parent.mkdir(parents=True, exist_ok=True)
    _replace(output, b"".join(orjson.dumps(r) + b"\n" for r in merged.rows))
    register_run(output, merged.run_key, merged.manifest)
    if merged.failed_attempts:
        _replace(failures_path(output), b"".join(merged.failed_attempts))
