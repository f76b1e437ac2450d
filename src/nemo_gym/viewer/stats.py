"""The numbers of a file's overview: status counts, mean reward with its 95% CI, histogram, pass@k.

Reads a :class:`nemo_gym.viewer.index.FileIndex`; answers ``app``'s summary and tasks endpoints.
Failed and malformed rows have no reward: they are counted, never averaged in as 0. A task is an
input row (``_ng_task_index``, or the hash of ``responses_create_params.input`` when absent); its
rollouts pass when ``reward >= pass_threshold``; pass@k is the unbiased estimator
``1 - C(n-c, k) / C(n, k)`` over its n scored rollouts of which c passed. The interval and
pass@k come from :mod:`nemo_gym.rollouts.stats`, as in ``ng_collect_rollouts``'s summary line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nemo_gym.rollouts.stats import estimate_mean, pass_at_k
from nemo_gym.viewer.index import MALFORMED, STATUS_CODE, STATUSES, FileIndex
from nemo_gym.viewer.schemas import (
    FileInfo,
    FileSummary,
    HistBin,
    KindCount,
    MalformedLine,
    PassAtK,
    RewardStats,
    TaskSort,
    TaskStat,
    ToolCount,
)

_HIST_BINS = 10
_MAX_MALFORMED_LISTED = 100


def reward_stats(rewards: np.ndarray) -> RewardStats | None:
    """Mean, sample std and the 95% confidence interval of the mean (Wilson for 0/1, else t)."""
    n = len(rewards)
    if n == 0:
        return None
    ones = int(np.count_nonzero(rewards == 1.0))
    binary = ones + int(np.count_nonzero(rewards == 0.0)) == n
    std = float(rewards.std(ddof=1)) if n > 1 else 0.0
    estimate = estimate_mean(n, float(rewards.mean()), std, ones if binary else None)
    return RewardStats(
        n=n,
        mean=estimate.mean,
        std=estimate.std,
        ci_low=estimate.low,
        ci_high=estimate.high,
        ci_method=estimate.method,
        min=float(rewards.min()),
        max=float(rewards.max()),
    )


def histogram(rewards: np.ndarray) -> list[HistBin]:
    """Ten bins over [0, 1] when every reward is in it, else over [min, max]."""
    if len(rewards) == 0:
        return []
    lo, hi = float(rewards.min()), float(rewards.max())
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    elif lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(rewards, bins=_HIST_BINS, range=(lo, hi))
    return [
        HistBin(lo=float(edges[i]), hi=float(edges[i + 1]), count=int(c))
        for i, c in enumerate(counts)
    ]


@dataclass(frozen=True)
class Tasks:
    """Per-task arrays, in order of each task's first row."""

    keys: np.ndarray  # task index, or -(input hash) - 1 when the row has none
    n: np.ndarray
    scored: np.ndarray
    failed: np.ndarray
    passed: np.ndarray
    reward_sum: np.ndarray
    first_row: np.ndarray


def task_keys(index: FileIndex) -> np.ndarray:
    cols = index.columns()
    return np.where(cols.task >= 0, cols.task, -cols.input_hash - 1)


def tasks(index: FileIndex, threshold: float) -> Tasks:
    """Group the file's rows (malformed ones aside) by task; cached per index version."""
    with index.lock:
        cache_key = f"tasks:{threshold!r}"
        cached = index.derived.get(cache_key)
        if isinstance(cached, Tasks):
            return cached
        cols = index.columns()
        keep = np.flatnonzero(cols.status != MALFORMED)
        keys = task_keys(index)[keep]
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        group = rank[inverse]
        reward = cols.reward[keep]
        scored = ~np.isnan(reward)
        size = len(uniq)
        result = Tasks(
            keys=uniq[order],
            n=np.bincount(group, minlength=size),
            scored=np.bincount(group, weights=scored, minlength=size).astype(np.int64),
            failed=np.bincount(
                group, weights=cols.status[keep] == STATUS_CODE["failed"], minlength=size
            ).astype(np.int64),
            passed=np.bincount(
                group,
                weights=scored & (np.nan_to_num(reward, nan=-np.inf) >= threshold),
                minlength=size,
            ).astype(np.int64),
            reward_sum=np.bincount(group, weights=np.nan_to_num(reward), minlength=size),
            first_row=keep[first[order]],
        )
        index.derived[cache_key] = result
        return result


def pass_at_ks(t: Tasks) -> list[PassAtK]:
    """pass@k for k = 1 .. the most scored rollouts of a task, each over the tasks with >= k."""
    if len(t.n) == 0:
        return []
    pairs, counts = np.unique(np.stack([t.scored, t.passed], axis=1), axis=0, return_counts=True)
    out = []
    for k in range(1, int(t.scored.max()) + 1):
        total, weight = 0.0, 0
        for (n, c), count in zip(pairs.tolist(), counts.tolist(), strict=True):
            if n >= k:
                total += pass_at_k(n, c, k) * count
                weight += count
        out.append(PassAtK(k=k, value=total / weight, tasks=weight))
    return out


def summarize_file(index: FileIndex, info: FileInfo, threshold: float) -> FileSummary:
    """The overview of one file."""
    with index.lock:
        cols = index.columns()
        counts = np.bincount(cols.status, minlength=len(STATUSES))
        pairs, per_pair = np.unique(
            np.stack([cols.status.astype(np.int64), cols.kind.astype(np.int64)], axis=1)
            if cols.n
            else np.zeros((0, 2), dtype=np.int64),
            axis=0,
            return_counts=True,
        )
        kinds = [
            KindCount(status=STATUSES[s], kind=index.kinds[k], count=int(c))
            for (s, k), c in zip(pairs.tolist(), per_pair.tolist(), strict=True)
            if k != 0
        ]
        rewards = cols.reward[~np.isnan(cols.reward)]
        t = tasks(index, threshold)
        malformed = [
            MalformedLine(row=row, line=int(cols.line[row]), error=error)
            for row, error in list(index.errors.items())[:_MAX_MALFORMED_LISTED]
        ]
        tools = sorted(
            (ToolCount(name=name, rows=len(rows)) for name, rows in index.tool_rows.items()),
            key=lambda tc: (-tc.rows, tc.name),
        )
        return FileSummary(
            file=info,
            rows=cols.n,
            status_counts={name: int(counts[i]) for i, name in enumerate(STATUSES)},
            failure_kinds=sorted(kinds, key=lambda kc: -kc.count),
            reward=reward_stats(rewards),
            histogram=histogram(rewards),
            pass_threshold=threshold,
            tasks=len(t.n),
            max_repeats=int(t.n.max()) if len(t.n) else 0,
            pass_at_k=pass_at_ks(t),
            tools=tools,
            has_tokens=index.has_tokens,
            malformed=malformed,
        )


def task_label(key: int) -> str:
    return f"task {key}" if key >= 0 else f"input #{-key - 1:012x}"


def task_page(
    index: FileIndex, threshold: float, sort: TaskSort, desc: bool, offset: int, limit: int
) -> tuple[int, list[TaskStat]]:
    """One page of the per-task table."""
    with index.lock:
        t = tasks(index, threshold)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = t.reward_sum / t.scored
            rate = t.passed / t.scored
        by = {"task": t.first_row, "pass_rate": rate, "mean_reward": mean, "failed": t.failed}
        values = np.asarray(by[sort], dtype=np.float64)
        nan_last = np.isnan(values)
        order = np.lexsort((-values if desc else values, nan_last))
        chosen = order[offset : offset + limit]
        page = [
            TaskStat(
                key=int(t.keys[i]),
                label=task_label(int(t.keys[i])),
                task_index=int(t.keys[i]) if t.keys[i] >= 0 else None,
                n=int(t.n[i]),
                scored=int(t.scored[i]),
                failed=int(t.failed[i]),
                passed=int(t.passed[i]),
                mean_reward=None if math.isnan(mean[i]) else float(mean[i]),
                pass_rate=None if math.isnan(rate[i]) else float(rate[i]),
                preview=index.previews[int(t.first_row[i])],
                first_row=int(t.first_row[i]),
            )
            for i in chosen.tolist()
        ]
        return len(t.n), page
