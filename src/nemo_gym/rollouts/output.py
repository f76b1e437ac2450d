"""The output JSONL: whole lines appended atomically, and what an existing file already holds.

Each row is written with one ``write()`` on a file opened with ``O_APPEND``, so a line is never
interleaved with another writer's (several collectors may share a file) and a crash or Ctrl+C
never leaves half a line behind. A manifest beside the output (``<output>.manifest.json``)
records what produced it, so that ``+resume=true`` can refuse to continue a file with a
different input or config.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from nemo_gym.core.errors import ConfigError


class RowWriter:
    """Appends rows to a JSONL file, one atomic write per row."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, row: dict[str, Any], raw: bytes | None = None) -> None:
        """Append ``row`` as one line (``raw``: its JSON already serialised on one line)."""
        line = raw if raw is not None else orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY)
        os.write(self._fd, line + b"\n")

    def close(self) -> None:
        os.close(self._fd)


def read_existing(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Return the rows of an existing output file and how many lines could not be parsed."""
    rows: list[dict[str, Any]] = []
    bad = 0
    if not path.exists():
        return rows, bad
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad += 1
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows, bad


def manifest_path(output: Path) -> Path:
    return output.with_name(output.name + ".manifest.json")


def build_manifest(
    *,
    input_path: Path,
    rows: list[dict[str, Any]],
    agent_name: str,
    num_repeats: int,
    limit: int | None,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """What identifies a collection run (compared on resume)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
    return {
        "input_jsonl_fpath": str(input_path.resolve()),
        "input_rows_sha256": digest.hexdigest(),
        "num_rows": len(rows),
        "agent_name": agent_name,
        "num_repeats": num_repeats,
        "limit": limit,
        "responses_create_params": overrides,
    }


def check_resume(output: Path, manifest: dict[str, Any]) -> None:
    """Refuse to resume ``output`` unless it was produced by the same run.

    Raises:
        ConfigError: no manifest, or a field differs (names it).
    """
    path = manifest_path(output)
    if not path.exists():
        raise ConfigError(
            f"cannot resume {output}: no {path.name} beside it records which input and config "
            "produced it; collect into a new file instead",
            key="resume",
        )
    previous = orjson.loads(path.read_bytes())
    for key, value in manifest.items():
        if previous.get(key) != value:
            raise ConfigError(
                f"cannot resume {output}: it was collected with {key}={previous.get(key)!r}, "
                f"this run has {key}={value!r}; collect into a new file instead",
                key="resume",
            )


def write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    manifest_path(output).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
