"""Summaries of task rows, in the JSON layout of NeMo Gym's ``*_metrics.json`` files.

For every row: one example; the number of ``tools``, of user turns in ``input`` and the
``temperature`` of its ``responses_create_params`` (when set); the number of whitespace-separated
words of those parameters dumped as JSON (a proxy for tokens). Every other top-level field
except ``response`` is summarised too: numbers and booleans (as 0/1, lists flattened) as a
distribution, strings as unique and total counts. A distribution is written as its count,
average, min, max and sample standard deviation, rounded to 2 decimals (3 below 1 in magnitude).

Unlike NeMo Gym, the summary of several datasets merges their other fields too (NeMo Gym keeps
those of the last dataset only). Neighbours: ``datasets.prepare`` feeds rows in and writes the
files; ``datasets.conflicts`` compares them with earlier ones.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nemo_gym.core.errors import InputDataError

#: Row fields that are not summarised as "other" fields.
SKIPPED_FIELDS = ("responses_create_params", "response")
WORDS_KEY = "Json-dumped number of words (proxy for token count)"


def round_metric(x: float) -> float:
    return round(x, 2) if abs(x) >= 1 else round(x, 3)


@dataclass
class Distribution:
    """Running count, mean, min, max and sum of squared deviations (Welford), mergeable."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def observe(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)
        self.low = min(self.low, x)
        self.high = max(self.high, x)

    def merge(self, other: Distribution) -> None:
        if other.count == 0:
            return
        n = self.count + other.count
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.count * other.count / n
        self.mean += delta * other.count / n
        self.count = n
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def to_json(self) -> dict[str, Any]:
        empty = self.count == 0
        std = math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0
        return {
            "Total # non-null values": self.count,
            "Average": round_metric(0.0 if empty else self.mean),
            "Min": round_metric(0.0 if empty else float(self.low)),
            "Max": round_metric(0.0 if empty else float(self.high)),
            "Standard deviation": round_metric(std),
        }


def _user_turns(inputs: Any) -> int:
    if isinstance(inputs, str):
        return 1
    if isinstance(inputs, list):
        return sum(1 for item in inputs if isinstance(item, dict) and item.get("role") == "user")
    return 0


@dataclass
class DatasetSummary:
    """The summary of one or more datasets' rows (see the module docstring)."""

    examples: int = 0
    tools: Distribution = field(default_factory=Distribution)
    words: Distribution = field(default_factory=Distribution)
    turns: Distribution = field(default_factory=Distribution)
    temperature: Distribution = field(default_factory=Distribution)
    numbers: dict[str, Distribution] = field(default_factory=dict)
    strings: dict[str, Counter[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def add_row(self, row: dict[str, Any], where: tuple[str, int | None] = ("row", None)) -> None:
        """Count one row (``where``: file and line, for the error on a field mixing kinds)."""
        params = row["responses_create_params"]
        self.examples += 1
        if params.get("tools") is not None:
            self.tools.observe(len(params["tools"]))
        if turns := _user_turns(params.get("input")):
            self.turns.observe(turns)
        if params.get("temperature") is not None:
            self.temperature.observe(float(params["temperature"]))
        self.words.observe(len(json.dumps(params).split()))
        for key, value in row.items():
            if key in SKIPPED_FIELDS:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, bool):
                    item = int(item)
                if isinstance(item, (int, float)):
                    self._distribution(key, where).observe(item)
                elif isinstance(item, str):
                    self._counter(key, where)[item] += 1

    def _note(self, key: str) -> None:
        if key not in self.order:
            self.order.append(key)

    def _distribution(self, key: str, where: tuple[str, int | None]) -> Distribution:
        if key in self.strings:
            raise InputDataError(*where, f"field {key!r} holds numbers here and strings before")
        self._note(key)
        return self.numbers.setdefault(key, Distribution())

    def _counter(self, key: str, where: tuple[str, int | None]) -> Counter[str]:
        if key in self.numbers:
            raise InputDataError(*where, f"field {key!r} holds strings here and numbers before")
        self._note(key)
        return self.strings.setdefault(key, Counter())

    def merge(self, other: DatasetSummary, label: str = "datasets") -> None:
        """Add ``other`` into this summary (``label`` names them in a kind-mismatch error)."""
        self.examples += other.examples
        for mine, theirs in (
            (self.tools, other.tools),
            (self.words, other.words),
            (self.turns, other.turns),
            (self.temperature, other.temperature),
        ):
            mine.merge(theirs)
        for key in other.order:
            if key in other.numbers:
                self._distribution(key, (label, None)).merge(other.numbers[key])
            else:
                self._counter(key, (label, None)).update(other.strings[key])

    def to_json(self) -> dict[str, Any]:
        """The metrics as NeMo Gym writes them (display names as keys)."""
        out: dict[str, Any] = {
            "Number of examples": self.examples,
            "Number of tools": self.tools.to_json(),
            WORDS_KEY: self.words.to_json(),
            "Number of turns": self.turns.to_json(),
            "Temperature": self.temperature.to_json(),
        }
        for key in self.order:
            if key in self.numbers:
                out[key] = self.numbers[key].to_json()
            else:
                counts = self.strings[key]
                out[key] = {"unique_count": len(counts), "total_count": sum(counts.values())}
        return out
