"""What a collection run reports: averages over scored rows, and every failure counted.

Averages are taken over rows that have a reward (completed and truncated), never over failed
rows as if they scored 0; a row's status is :func:`nemo_gym.rollouts.row.row_status`. Every
top-level number (booleans as 0/1) is averaged, except Gym's own ``_ng_`` bookkeeping. The mean
reward comes with its 95% confidence interval from :mod:`nemo_gym.rollouts.stats` (Wilson when
every reward is 0 or 1, Student t otherwise).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nemo_gym.rollouts.row import FAILURE_KEY, row_status
from nemo_gym.rollouts.stats import MeanEstimate, RunningMean


@dataclass
class RunSummary:
    """Counts and sums accumulated as rows finish."""

    total: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    failure_kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    truncation_kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    rewards: RunningMean = field(default_factory=RunningMean)

    def add(self, row: dict[str, Any]) -> None:
        """Account for one finished row."""
        self.total += 1
        status = row_status(row)
        self.statuses[status] += 1
        failure = row.get(FAILURE_KEY)
        if isinstance(failure, dict) and failure.get("kind"):
            kinds = self.failure_kinds if status == "failed" else self.truncation_kinds
            kinds[str(failure["kind"])] += 1
        if status == "failed":
            return
        for key, value in row.items():
            if key.startswith("_ng_") or not isinstance(value, (int, float)):
                continue
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1
            if key == "reward":
                self.rewards.add(float(value))

    @property
    def scored(self) -> int:
        return self.total - self.statuses["failed"]

    def averages(self) -> dict[str, float]:
        """Mean of every numeric field over the scored rows (``reward`` first)."""
        keys = sorted(self.sums, key=lambda k: (k != "reward", k))
        return {k: self.sums[k] / self.counts[k] for k in keys}

    def reward_estimate(self) -> MeanEstimate | None:
        """The mean reward with its 95% interval (None when no row was scored)."""
        return self.rewards.estimate()

    def line(self) -> str:
        """One honest sentence about the run."""
        failed = self.statuses["failed"]
        reward = self.reward_estimate()
        if reward is None:
            head = f"no scored rows out of {self.total}"
        else:
            interval = (
                f" (95% CI {reward.low:.3g} to {reward.high:.3g})"
                if reward.low is not None and reward.high is not None
                else ""
            )
            head = f"mean reward {reward.mean:.4g}{interval} over {reward.n} of {self.total} rows"
        parts = [head]
        if self.statuses["truncated"]:
            parts.append(
                f"{self.statuses['truncated']} truncated and included"
                f"{_kinds(self.truncation_kinds)}"
            )
        parts.append(f"{failed} failed{_kinds(self.failure_kinds)}")
        return ", ".join(parts)


def _kinds(counter: collections.Counter[str]) -> str:
    if not counter:
        return ""
    return " (" + ", ".join(f"{k}: {n}" for k, n in counter.most_common()) + ")"


def summarise(rows: Iterable[dict[str, Any]]) -> RunSummary:
    """Build a summary from finished rows."""
    summary = RunSummary()
    for row in rows:
        summary.add(row)
    return summary
