"""The index of one rollout JSONL file: where each line starts and a compact summary of it.

One pass over the bytes fills a :class:`~nemo_gym.viewer.table.RowTable` (offsets, line numbers,
status, reward, counts, tools, search text); a large file is scanned in parallel worker processes,
one byte range each. The page never receives the file: ``stats``, ``query`` and ``compare`` read
these columns, and a row's full JSON is read back by its offset.

:meth:`FileIndex.refresh` re-stats the file and indexes only appended complete lines (a last line
without its newline waits); a file that shrank or was replaced is indexed again from the start.
"""

from __future__ import annotations

import bisect
import logging
import multiprocessing
import os
import threading
from array import array
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nemo_gym.viewer.schemas import STATUSES
from nemo_gym.viewer.table import COLUMN_TYPES, MALFORMED, STATUS_CODE, RowTable, scan_range

__all__ = ["MALFORMED", "STATUSES", "STATUS_CODE", "Columns", "FileIndex"]

logger = logging.getLogger(__name__)

_CHUNK = 32 * 1024 * 1024
_PARALLEL_MIN_BYTES = 16 * 1024 * 1024
_SEARCH_CACHE = 32


@dataclass(frozen=True)
class Columns:
    """A read-only numpy copy of the index's columns (one entry per row)."""

    n: int
    line: np.ndarray
    status: np.ndarray
    kind: np.ndarray
    reward: np.ndarray
    steps: np.ndarray
    tokens: np.ndarray
    elapsed: np.ndarray
    task: np.ndarray
    repeat: np.ndarray
    input_hash: np.ndarray


class FileIndex:
    """Line offsets and row summaries of one file; every method holds ``lock``."""

    def __init__(self, file_id: int, path: Path) -> None:
        self.file_id = file_id
        self.path = path
        self.lock = threading.RLock()
        self.version = 0
        self._reset()

    def _reset(self) -> None:
        self.version += 1
        self.indexed_bytes = 0
        self._identity: tuple[int, int] | None = None
        self.table = RowTable()
        self._snapshot: Columns | None = None
        self._search_cache: dict[bytes, np.ndarray] = {}
        self.derived: dict[str, Any] = {}  # results computed from this version (``stats``)

    @property
    def rows(self) -> int:
        return self.table.rows

    @property
    def kinds(self) -> list[str]:
        return self.table.kinds

    @property
    def tool_rows(self) -> dict[str, array[int]]:
        return self.table.tool_rows

    @property
    def previews(self) -> list[str]:
        return self.table.previews

    @property
    def errors(self) -> dict[int, str]:
        return self.table.errors

    @property
    def has_tokens(self) -> bool:
        return self.table.has_tokens

    def refresh(self, workers: int = 1) -> bool:
        """Index lines appended since the last call; True if anything changed.

        Args:
            workers: processes to scan a large backlog with (only before threads are started:
                the workers are forked).
        """
        with self.lock:
            stat = os.stat(self.path)
            identity = (stat.st_dev, stat.st_ino)
            if self._identity not in (None, identity) or stat.st_size < self.indexed_bytes:
                logger.info("%s was replaced or truncated; indexing it again", self.path)
                self._reset()
            self._identity = identity
            if stat.st_size == self.indexed_bytes:
                return False
            before = (self.rows, self.indexed_bytes)
            with open(self.path, "rb") as f:
                if workers > 1 and stat.st_size - self.indexed_bytes >= _PARALLEL_MIN_BYTES:
                    self._read_parallel(f, stat.st_size, workers)
                self._read_from(f, stat.st_size)
            changed = (self.rows, self.indexed_bytes) != before
            if changed:
                self.version += 1
                self._snapshot = None
                self._search_cache.clear()
                self.derived.clear()
            return changed

    def _read_from(self, f: BinaryIO, size: int) -> None:
        chunk = _CHUNK
        while self.indexed_bytes < size:
            f.seek(self.indexed_bytes)
            buf: bytes = f.read(min(chunk, size - self.indexed_bytes))
            end = buf.rfind(b"\n")
            if end < 0:
                if self.indexed_bytes + len(buf) >= size:
                    return  # only a partial last line: wait for its newline
                chunk *= 2  # one line longer than the chunk
                continue
            self.table.scan(buf[: end + 1], self.indexed_bytes)
            self.indexed_bytes += end + 1

    def _read_parallel(self, f: BinaryIO, size: int, workers: int) -> None:
        """Scan whole lines from ``indexed_bytes`` up to about ``size`` in worker processes."""
        start = self.indexed_bytes
        f.seek(max(start, size - _CHUNK))
        tail = f.read(size - f.tell())
        if tail.rfind(b"\n") < 0:
            return  # a huge last line: the serial scan handles it
        end = size - len(tail) + tail.rfind(b"\n") + 1  # just after the last complete line
        step = (end - start) // (workers * 4) + 1
        bounds = [start]
        while bounds[-1] + step < end:
            f.seek(bounds[-1] + step)
            f.readline()  # move to the start of the next line
            if f.tell() >= end:
                break
            bounds.append(f.tell())
        bounds.append(end)
        if end <= start:
            return
        ctx = multiprocessing.get_context("fork")  # the parent's imports are reused
        with ProcessPoolExecutor(min(workers, len(bounds) - 1), mp_context=ctx) as pool:
            parts = pool.map(scan_range, [self.path] * (len(bounds) - 1), bounds, bounds[1:])
            for part in parts:
                self.table.extend(part)
        self.indexed_bytes = bounds[-1]

    def columns(self) -> Columns:
        """The columns as numpy arrays (cached until the next change)."""
        with self.lock:
            if self._snapshot is None or self._snapshot.n != self.rows:
                arrays = {
                    name: np.array(col, dtype=np.dtype(COLUMN_TYPES[name]))
                    for name, col in self.table.cols.items()
                }
                self._snapshot = Columns(n=self.rows, **arrays)
            return self._snapshot

    def rows_containing(self, term: str) -> np.ndarray:
        """A boolean mask of the rows whose search text contains ``term`` (lowercase)."""
        needle = term.lower().encode("utf-8")
        with self.lock:
            cached = self._search_cache.get(needle)
            if cached is not None and len(cached) == self.rows:
                return cached
            mask = np.zeros(self.rows, dtype=bool)
            text, starts = self.table.text, self.table.text_start
            pos = text.find(needle)
            while pos >= 0:
                row = bisect.bisect_right(starts, pos) - 1
                mask[row] = True
                nxt = starts[row + 1] if row + 1 < len(starts) else len(text)
                pos = text.find(needle, nxt)
            if len(self._search_cache) >= _SEARCH_CACHE:
                self._search_cache.pop(next(iter(self._search_cache)))
            self._search_cache[needle] = mask
            return mask

    def tool_mask(self, tool: str) -> np.ndarray:
        with self.lock:
            mask = np.zeros(self.rows, dtype=bool)
            rows = self.tool_rows.get(tool)
            if rows is not None and len(rows):
                mask[np.frombuffer(rows, dtype=np.int32).copy()] = True
            return mask

    def read_line(self, row_id: int) -> bytes:
        """The bytes of one row's line, read back by its offset."""
        with self.lock:
            offset, length = self.table.offsets[row_id], self.table.lengths[row_id]
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)
