"""Compare two runs task by task: mean reward and pass rate side by side, biggest changes first.

Tasks are joined by ``_ng_task_index`` when every row of both files has one, else by the hash
of ``responses_create_params.input``. ``delta`` is B's mean reward minus A's over scored rows; the
list puts the largest |delta| first (then tasks without a delta), filtered to better/worse/changed
on request. Reads two :class:`~nemo_gym.viewer.index.FileIndex`; used by ``app``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nemo_gym.viewer.index import MALFORMED, FileIndex
from nemo_gym.viewer.schemas import CompareFilter, CompareResult, CompareSide, CompareTask, FileInfo
from nemo_gym.viewer.stats import task_label

_ROWS_LISTED = 8


@dataclass(frozen=True)
class _Groups:
    keys: np.ndarray  # sorted
    n: np.ndarray
    scored: np.ndarray
    mean: np.ndarray
    rate: np.ndarray
    row_keys: np.ndarray  # per row, malformed rows -> a key no task has
    first_row: np.ndarray


def _row_keys(index: FileIndex, by: Literal["task_index", "input_hash"]) -> np.ndarray:
    cols = index.columns()
    keys = cols.task if by == "task_index" else -cols.input_hash - 1
    return np.where(cols.status == MALFORMED, np.iinfo(np.int64).min, keys)


def _groups(index: FileIndex, by: Literal["task_index", "input_hash"], thr: float) -> _Groups:
    cols = index.columns()
    row_keys = _row_keys(index, by)
    keep = np.flatnonzero(cols.status != MALFORMED)
    keys, first, inverse = np.unique(row_keys[keep], return_index=True, return_inverse=True)
    reward = cols.reward[keep]
    scored = ~np.isnan(reward)
    size = len(keys)
    n_scored = np.bincount(inverse, weights=scored, minlength=size)
    total = np.bincount(inverse, weights=np.nan_to_num(reward), minlength=size)
    passed = np.bincount(inverse, weights=np.nan_to_num(reward, nan=-np.inf) >= thr, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, rate = total / n_scored, passed / n_scored
    return _Groups(
        keys=keys,
        n=np.bincount(inverse, minlength=size),
        scored=n_scored.astype(np.int64),
        mean=mean,
        rate=rate,
        row_keys=row_keys,
        first_row=keep[first],
    )


def _side(g: _Groups, key: int) -> tuple[CompareSide | None, int | None]:
    i = int(np.searchsorted(g.keys, key))
    if i >= len(g.keys) or g.keys[i] != key:
        return None, None
    rows = np.flatnonzero(g.row_keys == key)[:_ROWS_LISTED]
    mean, rate = float(g.mean[i]), float(g.rate[i])
    side = CompareSide(
        n=int(g.n[i]),
        scored=int(g.scored[i]),
        mean_reward=None if math.isnan(mean) else mean,
        pass_rate=None if math.isnan(rate) else rate,
        rows=[int(r) for r in rows],
    )
    return side, int(g.first_row[i])


def _lookup(g: _Groups, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``keys``: is it a task of ``g``, and its mean reward (NaN if not)."""
    if len(g.keys) == 0:
        return np.zeros(len(keys), dtype=bool), np.full(len(keys), np.nan)
    i = np.minimum(np.searchsorted(g.keys, keys), len(g.keys) - 1)
    present = g.keys[i] == keys
    return present, np.where(present, g.mean[i], np.nan)


def _file_mean(index: FileIndex) -> float | None:
    rewards = index.columns().reward
    scored = rewards[~np.isnan(rewards)]
    return float(scored.mean()) if len(scored) else None


def compare(
    a: FileIndex,
    b: FileIndex,
    infos: tuple[FileInfo, FileInfo],
    threshold: float,
    show: CompareFilter,
    offset: int,
    limit: int,
) -> CompareResult:
    """Join ``a`` and ``b`` by task and return one page of the per-task comparison."""
    with a.lock, b.lock:
        by: Literal["task_index", "input_hash"] = "task_index"
        for index in (a, b):
            cols = index.columns()
            if np.any((cols.task < 0) & (cols.status != MALFORMED)):
                by = "input_hash"
        ga, gb = _groups(a, by, threshold), _groups(b, by, threshold)
        keys = np.union1d(ga.keys, gb.keys)
        in_a, mean_a = _lookup(ga, keys)
        in_b, mean_b = _lookup(gb, keys)
        delta = mean_b - mean_a
        known = ~np.isnan(delta)
        better, worse = known & (delta > 1e-12), known & (delta < -1e-12)
        wanted = {"all": np.ones(len(keys), dtype=bool), "better": better, "worse": worse}
        chosen = np.flatnonzero(wanted.get(show, better | worse))
        order = np.lexsort((keys[chosen], -np.abs(np.nan_to_num(delta[chosen])), ~known[chosen]))
        chosen = chosen[order]
        page = []
        for i in chosen[offset : offset + limit].tolist():
            key = int(keys[i])
            side_a, first_a = _side(ga, key)
            side_b, first_b = _side(gb, key)
            preview_from, first = (a, first_a) if first_a is not None else (b, first_b)
            page.append(
                CompareTask(
                    key=key,
                    label=task_label(key),
                    task_index=key if by == "task_index" else None,
                    preview=preview_from.previews[first] if first is not None else "",
                    a=side_a,
                    b=side_b,
                    delta=None if math.isnan(delta[i]) else float(delta[i]),
                )
            )
        return CompareResult(
            a=infos[0],
            b=infos[1],
            joined_by=by,
            mean_a=_file_mean(a),
            mean_b=_file_mean(b),
            better=int(better.sum()),
            worse=int(worse.sum()),
            same=int((known & ~better & ~worse).sum()),
            only_a=int((in_a & ~in_b).sum()),
            only_b=int((in_b & ~in_a).sum()),
            matched=len(chosen),
            offset=offset,
            limit=limit,
            tasks=page,
        )
