"""Filter, sort and page the rollout list of one file, on the server (the page gets one page).

Filters combine with AND: statuses, failure kind, a reward range (rows with no reward never
match a range), a tool the model called, a task, and full-text search: every whitespace-separated
term must occur (case-insensitively) in the row's inputs, outputs or failure message. Unknown
values (no reward, no step count) sort last in either direction. Used by ``app``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from nemo_gym.viewer.index import STATUS_CODE, STATUSES, FileIndex
from nemo_gym.viewer.schemas import RowBrief, RowPage, SortKey, Status
from nemo_gym.viewer.stats import task_keys


@dataclass(frozen=True)
class RowFilter:
    statuses: list[Status] = field(default_factory=list)
    kind: str | None = None
    reward_min: float | None = None
    reward_max: float | None = None
    tool: str | None = None
    task: int | None = None
    q: str | None = None


def matching_rows(index: FileIndex, f: RowFilter) -> np.ndarray:
    """A boolean mask of the rows that pass every filter."""
    cols = index.columns()
    mask = np.ones(cols.n, dtype=bool)
    if f.statuses:
        mask &= np.isin(cols.status, [STATUS_CODE[s] for s in f.statuses])
    if f.kind:
        code = index.kinds.index(f.kind) if f.kind in index.kinds else -1
        mask &= cols.kind == code
    if f.reward_min is not None:
        mask &= np.nan_to_num(cols.reward, nan=-np.inf) >= f.reward_min
    if f.reward_max is not None:
        mask &= np.nan_to_num(cols.reward, nan=np.inf) <= f.reward_max
    if f.tool:
        mask &= index.tool_mask(f.tool)
    if f.task is not None:
        mask &= task_keys(index) == f.task
    for term in (f.q or "").split():
        mask &= index.rows_containing(term)
    return mask


def _sort_values(index: FileIndex, key: SortKey) -> tuple[np.ndarray, np.ndarray]:
    """(values, unknown) for a sort key; row order breaks ties."""
    cols = index.columns()
    if key == "reward":
        return np.nan_to_num(cols.reward), np.isnan(cols.reward)
    if key == "elapsed":
        return np.nan_to_num(cols.elapsed), np.isnan(cols.elapsed)
    if key == "status":
        return cols.status.astype(np.float64), np.zeros(cols.n, dtype=bool)
    if key in ("steps", "tokens"):
        values = cols.steps if key == "steps" else cols.tokens
        return values.astype(np.float64), values < 0
    if key == "task":
        keys = task_keys(index).astype(np.float64) * 1e6 + np.maximum(cols.repeat, 0)
        return keys, np.zeros(cols.n, dtype=bool)
    return np.arange(cols.n, dtype=np.float64), np.zeros(cols.n, dtype=bool)


def _brief(index: FileIndex, row: int) -> RowBrief:
    cols = index.columns()
    kind = index.kinds[int(cols.kind[row])]
    reward = float(cols.reward[row])
    elapsed = float(cols.elapsed[row])

    def known(value: int) -> int | None:
        return value if value >= 0 else None

    return RowBrief(
        id=row,
        line=int(cols.line[row]),
        status=STATUSES[int(cols.status[row])],
        failure_kind=kind or None,
        reward=None if math.isnan(reward) else reward,
        steps=known(int(cols.steps[row])),
        tokens=known(int(cols.tokens[row])),
        elapsed_s=None if math.isnan(elapsed) else elapsed,
        task_index=known(int(cols.task[row])),
        repeat_index=known(int(cols.repeat[row])),
        tools=_tools_of(index, row),
        preview=index.previews[row],
        error=index.errors.get(row),
    )


def _tools_of(index: FileIndex, row: int) -> list[str]:
    out = []
    for name, rows in index.tool_rows.items():
        i = bisect.bisect_left(rows, row)  # each tool's row list is in row order
        if i < len(rows) and rows[i] == row:
            out.append(name)
    return out


def row_page(
    index: FileIndex, f: RowFilter, sort: SortKey, desc: bool, offset: int, limit: int
) -> RowPage:
    """One page of the filtered, sorted rollout list."""
    with index.lock:
        mask = matching_rows(index, f)
        chosen = np.flatnonzero(mask)
        if sort != "line" or desc:
            values, unknown = _sort_values(index, sort)
            v, u = values[chosen], unknown[chosen]
            order = np.lexsort((chosen, -v if desc else v, u))  # ties stay in line order
            chosen = chosen[order]
        page = chosen[offset : offset + limit]
        return RowPage(
            total=index.rows,
            matched=len(chosen),
            offset=offset,
            limit=limit,
            rows=[_brief(index, int(r)) for r in page],
        )
