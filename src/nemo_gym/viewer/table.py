"""The columns an index keeps per row, filled from a byte range of lines, mergeable in order.

:class:`RowTable` turns complete lines into one entry per non-empty line (offset, length, line
number, the :func:`~nemo_gym.viewer.rowinfo.summarize` fields, search text); a line that is not a
JSON object becomes a ``malformed`` entry with its parse error. :func:`scan_range` builds a table
for part of a file in a worker process; :meth:`RowTable.extend` appends such a part. Owned by
``index``.
"""

from __future__ import annotations

import math
from array import array
from pathlib import Path
from typing import Any

import orjson

from nemo_gym.viewer.rowinfo import summarize
from nemo_gym.viewer.schemas import STATUSES

STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
MALFORMED = STATUS_CODE["malformed"]
COLUMN_TYPES = {"line": "q", "status": "b", "kind": "h", "reward": "d", "steps": "q"}
COLUMN_TYPES |= {"tokens": "q", "elapsed": "d", "task": "q", "repeat": "q", "input_hash": "q"}
_MALFORMED_VALUES: dict[str, float] = {"status": MALFORMED, "kind": 0, "reward": math.nan}
_MALFORMED_VALUES |= {"elapsed": math.nan, "steps": -1, "tokens": -1, "task": -1, "repeat": -1}
_MALFORMED_VALUES |= {"input_hash": -1}


class RowTable:
    """Per-row columns; ``line`` numbers count every line, empty ones too."""

    def __init__(self) -> None:
        self.offsets = array("q")
        self.lengths = array("q")
        self.cols: dict[str, array[Any]] = {k: array(t) for k, t in COLUMN_TYPES.items()}
        self.kinds: list[str] = [""]
        self.kind_code: dict[str, int] = {"": 0}
        self.tool_rows: dict[str, array[int]] = {}
        self.previews: list[str] = []
        self.errors: dict[int, str] = {}
        self.has_tokens = False
        self.text = bytearray()  # every row's lowercase search text, each ended by a NUL byte
        self.text_start = array("q")
        self.lines_seen = 0

    @property
    def rows(self) -> int:
        return len(self.offsets)

    def scan(self, buf: bytes, pos: int) -> None:
        """Add the complete lines of ``buf`` (which ends with a newline), found at ``pos``."""
        for raw in buf[:-1].split(b"\n"):
            self.lines_seen += 1
            length = len(raw)
            if raw.strip():
                self._add(raw, pos, length)
            pos += length + 1

    def _add(self, raw: bytes, pos: int, length: int) -> None:
        row_id = self.rows
        self.offsets.append(pos)
        self.lengths.append(length)
        cols = self.cols
        cols["line"].append(self.lines_seen)
        error = None
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict):
                error = f"not a JSON object (a JSON {type(obj).__name__})"
        except orjson.JSONDecodeError as exc:
            error = f"invalid JSON: {exc}"
        if error is not None:
            self.errors[row_id] = error
            for name, value in _MALFORMED_VALUES.items():
                cols[name].append(value)
            self.previews.append(raw[:200].decode("utf-8", "replace"))
            self._add_text(raw[:10_000].decode("utf-8", "replace").lower())
            return
        s = summarize(obj)
        code = self.kind_code.get(s.failure_kind)
        if code is None:
            code = self.kind_code[s.failure_kind] = len(self.kinds)
            self.kinds.append(s.failure_kind)
        cols["status"].append(STATUS_CODE[s.status])
        cols["kind"].append(code)
        cols["reward"].append(s.reward)
        cols["steps"].append(s.steps)
        cols["tokens"].append(s.tokens)
        cols["elapsed"].append(s.elapsed_s)
        cols["task"].append(s.task_index)
        cols["repeat"].append(s.repeat_index)
        cols["input_hash"].append(s.input_hash)
        for tool in s.tools:
            self.tool_rows.setdefault(tool, array("i")).append(row_id)
        self.previews.append(s.preview)
        self.has_tokens = self.has_tokens or s.has_token_fields
        self._add_text(s.search_text)

    def _add_text(self, text: str) -> None:
        self.text_start.append(len(self.text))
        self.text += text.encode("utf-8", "replace")
        self.text += b"\x00"  # rows are separated so a match never spans two rows

    def extend(self, part: RowTable) -> None:
        """Append the rows of ``part``, which was scanned from the bytes right after ours."""
        base_rows, base_text = self.rows, len(self.text)
        self.offsets.extend(part.offsets)
        self.lengths.extend(part.lengths)
        remap = array("h", [self._kind(k) for k in part.kinds])
        for name, col in part.cols.items():
            if name == "line":
                self.cols[name].extend(array("q", (n + self.lines_seen for n in col)))
            elif name == "kind":
                self.cols[name].extend(array("h", (remap[k] for k in col)))
            else:
                self.cols[name].extend(col)
        for tool, rows in part.tool_rows.items():
            mine = self.tool_rows.setdefault(tool, array("i"))
            mine.extend(array("i", (r + base_rows for r in rows)))
        self.previews.extend(part.previews)
        self.errors.update({r + base_rows: e for r, e in part.errors.items()})
        self.has_tokens = self.has_tokens or part.has_tokens
        self.text_start.extend(array("q", (s + base_text for s in part.text_start)))
        self.text += part.text
        self.lines_seen += part.lines_seen

    def _kind(self, kind: str) -> int:
        code = self.kind_code.get(kind)
        if code is None:
            code = self.kind_code[kind] = len(self.kinds)
            self.kinds.append(kind)
        return code


def scan_range(path: Path, start: int, end: int) -> RowTable:
    """A table of the lines in ``path[start:end]`` (``end`` just after a newline)."""
    table = RowTable()
    with open(path, "rb") as f:
        f.seek(start)
        table.scan(f.read(end - start), start)
    return table
