"""What the training loop reports: reward summaries with 95% intervals, results, the plot.

Rewards are summarised per task first (the repeats of a task are not independent), then over
tasks with a Student-t 95% interval; failed rows are counted and left out, never scored 0.
Neighbours: ``loop.py`` (produces the results), ``cli/train_loop.py`` (prints them).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nemo_gym.training.grpo import UpdateStats

logger = logging.getLogger(__name__)
# Student-t 0.975 quantiles by degrees of freedom (1..30); 1.96 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip



@dataclass(frozen=True)
class RewardSummary:
    """Mean reward over tasks (each task's mean over its repeats) and its 95% interval."""

    mean: float
    half_width: float  # the interval is mean +- half_width
    tasks: int
    rollouts: int
    failed: int

    def text(self) -> str:
        return f"{self.mean:.3f} +- {self.half_width:.3f}"


def summarise_rewards(rows: list[dict[str, Any]]) -> RewardSummary:
    """Per-task mean rewards, their mean and Student-t 95% half-width (failed rows counted)."""
    by_task: dict[Any, list[float]] = defaultdict(list)
    failed = 0
    for row in rows:
        reward = row.get("reward")
        if row.get("_ng_status") == "failed" or not isinstance(reward, (int, float)):
            failed += 1
            continue
        by_task[row.get("_ng_task_index")].append(float(reward))
    means = [statistics.fmean(v) for v in by_task.values()]
    if not means:
        return RewardSummary(math.nan, math.nan, 0, 0, failed)
    n = len(means)
    half = math.nan
    if n > 1:
        t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
        half = t * statistics.stdev(means) / math.sqrt(n)
    return RewardSummary(statistics.fmean(means), half, n, len(rows) - failed, failed)


@dataclass
class IterationResult:
    iteration: int
    version: str
    train: RewardSummary
    heldout: RewardSummary
    seconds: dict[str, float]  # phase -> seconds: update, export, reload, collect
    update: UpdateStats | None = None


def as_json(results: list[IterationResult]) -> list[dict[str, Any]]:
    """The results as JSON-ready dicts (an undefined interval, from one task, as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return [clean(dataclasses.asdict(r)) for r in results]


def plot(results: list[IterationResult], path: Path) -> Path | None:
    """Reward against iteration (train and held-out, with 95% intervals) as a PNG; None when
    matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot written")
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    x = [r.iteration for r in results]
    for label, pick in (("train", "train"), ("held-out", "heldout")):
        summaries = [getattr(r, pick) for r in results]
        errors = [0.0 if math.isnan(s.half_width) else s.half_width for s in summaries]
        ax.errorbar(x, [s.mean for s in summaries], yerr=errors, marker="o", capsize=4, label=label)
    ax.set_xlabel("iteration (GRPO updates)")
    ax.set_ylabel("mean reward (95% interval over tasks)")
    ax.set_xticks(x)
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
