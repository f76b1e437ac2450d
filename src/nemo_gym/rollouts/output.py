"""The output JSONL: whole lines appended atomically, and what an existing file already holds.

Each row is written with one ``write()`` on a file opened with ``O_APPEND``, so a line is never
interleaved with another writer's (several collectors may share a file) and a crash or Ctrl+C
never leaves half a line behind. A manifest beside the output (``<output>.manifest.json``)
records what produced it, so that ``+resume=true`` can refuse to continue a file with a
different input or config (``resume.py``). A last line left unfinished by a killed writer is
cut before anything is appended (:func:`repair_partial_line`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson


class RowWriter:
    """Appends rows to a JSONL file, one atomic write per row.

    Each write holds a shared lock on the file, so that :func:`rewrite_locked` (which holds it
    exclusively) never loses a line another collector is appending.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, row: dict[str, Any], raw: bytes | None = None) -> None:
        """Append ``row`` as one line (``raw``: its JSON already serialised on one line)."""
        line = raw if raw is not None else orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY)
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        try:
            os.write(self._fd, line + b"\n")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def repair_partial_line(path: Path) -> int:
    """Cut a last line that was never finished (a writer killed mid-write); bytes removed.

    Without this, the next row appended would be glued to the fragment and both be lost.
    """
    if not path.exists():
        return 0
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return 0
        block = 1 << 20
        end = size
        while end > 0:  # find the last newline, reading backwards
            start = max(0, end - block)
            at = os.pread(fd, end - start, start).rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            end = start
        else:
            keep = 0
        os.ftruncate(fd, keep)
        return size - keep
    finally:
        os.close(fd)


def rewrite_locked(
    path: Path, *, keep: Callable[[dict[str, Any]], bool], moved_to: Path
) -> int:
    """Move the rows ``keep`` rejects from ``path`` to ``moved_to``; return how many.

    The file is rewritten in place under an exclusive lock (other collectors' appends wait; they
    keep their file descriptors, so the file must not be replaced). The kept content is first
    saved beside it (``<file>.rewrite``) and the moved rows appended to ``moved_to``, so a crash
    midway loses nothing: :func:`finish_interrupted_rewrite` completes it on the next run.
    """
    if not path.exists():
        return 0
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        kept: list[bytes] = []
        moved: list[bytes] = []
        with open(fd, "rb", closefd=False) as handle:
            handle.seek(0)
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    kept.append(raw)
                    continue
                (kept if not isinstance(row, dict) or keep(row) else moved).append(raw)
        if not moved:
            return 0
        backup = path.with_name(path.name + ".rewrite")
        backup.write_bytes(b"".join(kept))
        with moved_to.open("ab") as out:
            out.write(b"".join(moved))
            out.flush()
            os.fsync(out.fileno())
        _replace_content(fd, backup)
        return len(moved)
    finally:
        os.close(fd)


def _replace_content(fd: int, backup: Path) -> None:
    content = backup.read_bytes()
    os.ftruncate(fd, 0)
    os.pwrite(fd, content, 0)
    os.fsync(fd)
    backup.unlink()


def finish_interrupted_rewrite(path: Path) -> bool:
    """Complete a :func:`rewrite_locked` that a crash cut short; True if there was one."""
    backup = path.with_name(path.name + ".rewrite")
    if not backup.exists():
        return False
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _replace_content(fd, backup)
    finally:
        os.close(fd)
    return True


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
    num_repeats: int | dict[str, int],
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
