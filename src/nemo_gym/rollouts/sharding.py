"""Sharded collection: which (task, repeat) units a shard runs, and where it writes them.

``ng_collect_rollouts +num_shards=N +shard_index=i`` runs shard ``i`` of ``N``: the input is
read, routed and expanded by its repeats exactly as an unsharded run does, and shard ``i`` keeps
the units at positions ``i, i + N, i + 2N, ...`` of that expanded list (round-robin: the shards
differ by at most one unit, no unit is in two shards, and together they hold every unit).

Each shard writes its own file beside the output, ``<stem>.shard-<i>-of-<N>.jsonl``, with the
same run key as the unsharded run (the manifest does not mention shards), so its rows are the
rows an unsharded run writes and ``+resume=true`` resumes the shard's own part. One shared file
is not used on purpose: appends from several hosts to one file on a network filesystem are not
atomic, and locks there are not reliable. Beside each shard file a record
(``<shard file>.shard.json``) lists the units the shard was given, so that ``ng_merge_rollouts``
(``rollouts.merge``) can prove the union complete and without overlap.

Neighbours: ``cli/collect.py`` (selects and records), ``rollouts.merge`` (checks and merges).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nemo_gym.config.loader import CLI_SOURCE
from nemo_gym.core.errors import ConfigError
from nemo_gym.rollouts.inputs import Task

SHARD_NAME = re.compile(r"^(?P<stem>.+)\.shard-(?P<index>\d+)-of-(?P<count>\d+)$")
RECORD_SUFFIX = ".shard.json"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def path(self, output: Path) -> Path:
        """The shard's own file: ``<stem>.shard-<i>-of-<N><suffix>`` beside ``output``."""
        return shard_path(output, self.index, self.count)

    def select(self, tasks: list[Task]) -> list[Task]:
        """The shard's units: every ``count``-th task of the expanded list from ``index``."""
        return tasks[self.index :: self.count]

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count} (0-based)"


def shard_path(output: Path, index: int, count: int) -> Path:
    return output.with_name(f"{output.stem}.shard-{index}-of-{count}{output.suffix}")


def unsharded_path(shard_file: Path) -> Path:
    """The output a shard file belongs to (``out.shard-1-of-4.jsonl`` -> ``out.jsonl``)."""
    match = SHARD_NAME.match(shard_file.stem)
    if match is None:
        raise ConfigError(
            "not a shard file name (<stem>.shard-<i>-of-<N>.jsonl)", source=str(shard_file)
        )
    return shard_file.with_name(match["stem"] + shard_file.suffix)


def record_path(shard_file: Path) -> Path:
    return shard_file.with_name(shard_file.name + RECORD_SUFFIX)


def check_shard(num_shards: int | None, shard_index: int | None) -> Shard | None:
    """The shard a collector runs, or None for an unsharded run.

    Raises:
        ConfigError: ``num_shards`` below 1, ``shard_index`` outside ``0 .. num_shards - 1``,
            or one given without the other (naming the ``+key``).
    """
    if num_shards is None and shard_index is None:
        return None
    if num_shards is None:
        raise ConfigError(
            f"+shard_index={shard_index} needs +num_shards=N (how many shards the input is "
            "split into)",
            source=CLI_SOURCE,
            key="+num_shards",
        )
    if num_shards < 1:
        raise ConfigError(
            f"must be at least 1 (got {num_shards})", source=CLI_SOURCE, key="+num_shards"
        )
    if shard_index is None:
        if num_shards == 1:
            return None
        raise ConfigError(
            f"+num_shards={num_shards} needs +shard_index=i, the shard this collector runs "
            f"(0 to {num_shards - 1})",
            source=CLI_SOURCE,
            key="+shard_index",
        )
    if not 0 <= shard_index < num_shards:
        raise ConfigError(
            f"must be between 0 and {num_shards - 1} for +num_shards={num_shards} "
            f"(got {shard_index}; shards are numbered from 0)",
            source=CLI_SOURCE,
            key="+shard_index",
        )
    return Shard(shard_index, num_shards)


def write_record(
    shard_file: Path, shard: Shard, run_key: str, total: int, mine: list[Task]
) -> None:
    """Save which units the shard was given (written whole, then renamed into place)."""
    record = {
        "shard_index": shard.index,
        "num_shards": shard.count,
        "run_key": run_key,
        "total_units": total,
        "units": [list(task.key) for task in mine],
    }
    path = record_path(shard_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(record))
    os.replace(tmp, path)


@dataclass(frozen=True)
class ShardRecord:
    """What :func:`write_record` saved for one shard file."""

    file: Path
    index: int
    count: int
    run_key: str
    total_units: int
    units: frozenset[tuple[int, int]]


def read_record(shard_file: Path) -> ShardRecord:
    """The record beside ``shard_file``.

    Raises:
        ConfigError: it is missing or malformed (naming the file).
    """
    path = record_path(shard_file)
    try:
        data: Any = orjson.loads(path.read_bytes())
        units = frozenset((int(t), int(r)) for t, r in data["units"])
        return ShardRecord(
            shard_file,
            int(data["shard_index"]),
            int(data["num_shards"]),
            str(data["run_key"]),
            int(data["total_units"]),
            units,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{shard_file} has no shard record ({path.name}): it was not written by "
            "ng_collect_rollouts +num_shards=N +shard_index=i",
            source=str(path),
        ) from None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed shard record: {exc}", source=str(path)) from None
