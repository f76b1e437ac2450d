"""What a collection run reports: averages over scored rows, and every failure counted.

Averages are taken over rows that have a reward (completed and truncated), never over failed
rows as if they scored 0; a row's status is :func:`nemo_gym.rollouts.row.row_status`. Every
top-level number (booleans as 0/1) is averaged, except Gym's own ``_ng_`` bookkeeping, and so is
each part of a multi-part reward (``reward_components/<name>``). The mean reward comes with its
95% confidence interval from :mod:`nemo_gym.rollouts.stats` (Wilson when every reward is 0 or
1, Student t otherwise).

The summary also keeps each scored row's verify response (the row without its heavy fields,
``response`` reduced to its ``usage``) for ``/aggregate_metrics`` (``metrics``), and its answer
for majority@k: the verifier's ``extracted_answer`` when it gives one, else (a digest of) the
final output text. :meth:`RunSummary.pass_majority` computes pass@k and majority@k per task with
``nemo_gym.reward_profile.compute_pass_majority_metrics`` over the scored rollouts only.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from nemo_gym.core import jsonbytes
from nemo_gym.rollouts.profile import compute_pass_majority_metrics
from nemo_gym.rollouts.row import FAILURE_KEY, numeric_reward, row_status
from nemo_gym.rollouts.stats import MeanEstimate, RunningMean

#: Row fields left out of a verify response sent to ``/aggregate_metrics`` (NeMo Gym's list).
HEAVY_KEYS = frozenset(
    {
        "response",
        "responses_create_params",
        "ng_agent_observations",
        "ng_model_call_capture",
        "ng_trajectory",
    }
)
ANSWER_KEY = "extracted_answer"
_ANSWER = "_ng_summary_answer"  # where pass_majority finds a rollout's answer (never sent)


def verify_response(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row without its heavy fields; ``response`` keeps only its ``usage``."""
    out = {k: v for k, v in row.items() if k not in HEAVY_KEYS}
    response = row.get("response")
    usage = response.get("usage") if isinstance(response, Mapping) else None
    if usage:
        out["response"] = {"usage": usage}
    return out


def final_answer(row: Mapping[str, Any]) -> str | None:
    """The verifier's ``extracted_answer``, else a digest of the final output text (or None)."""
    if ANSWER_KEY in row:
        answer = row[ANSWER_KEY]
        return None if answer is None else str(answer)
    response = row.get("response")
    output = response.get("output") if isinstance(response, Mapping) else None
    texts = [
        part.get("text") or ""
        for item in output or []
        if isinstance(item, Mapping) and item.get("type") == "message"
        for part in item.get("content") or []
        if isinstance(part, Mapping) and part.get("type") == "output_text"
    ]
    text = "".join(texts).strip()
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest() if text else None


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
    # Kept as JSON bytes: one small object per scored row instead of a few dozen (a run of
    # 32,768 rows held 150 MB of verify responses as dicts), decoded when the run ends.
    packed_verify_responses: list[bytes] = field(default_factory=list)
    answers: list[str | None] = field(default_factory=list)
    failed_by_agent: collections.Counter[str] = field(default_factory=collections.Counter)

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
            ref = row.get("agent_ref")
            name = ref.get("name") if isinstance(ref, Mapping) else None
            self.failed_by_agent[name if isinstance(name, str) else ""] += 1
            return
        numbers = [(k, v) for k, v in row.items() if not k.startswith("_ng_")]
        components = row.get("reward_components")
        if isinstance(components, Mapping):
            numbers += [(f"reward_components/{k}", v) for k, v in components.items()]
        for key, value in numbers:
            if not isinstance(value, (int, float)):
                continue
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1
            if key == "reward":
                self.rewards.add(float(value))
        self.packed_verify_responses.append(jsonbytes.dumps(verify_response(row)))
        self.answers.append(final_answer(row))

    @property
    def verify_responses(self) -> list[dict[str, Any]]:
        """Every scored row's verify response, in the order the rows finished."""
        return [orjson.loads(packed) for packed in self.packed_verify_responses]

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

    def pass_majority(self) -> tuple[int, dict[str, float]]:
        """The number of tasks, and ``pass@k`` / ``majority@k`` (percent, averaged over tasks)
        for k = 1 .. the most scored rollouts of a task, over the scored rollouts only."""
        tasks: dict[Any, list[dict[str, Any]]] = {}
        for packed, answer in zip(self.packed_verify_responses, self.answers, strict=True):
            row = orjson.loads(packed)
            reward = numeric_reward(row)
            if reward is None:
                continue
            tasks.setdefault(row.get("_ng_task_index"), []).append(
                {
                    "reward": reward,
                    "rollout": row.get("_ng_rollout_index") or 0,
                    _ANSWER: answer,
                }
            )
        grouped = [sorted(t, key=lambda r: r["rollout"]) for t in tasks.values()]
        metrics = compute_pass_majority_metrics(grouped, answer_key=_ANSWER)[0]
        out = {}
        for key, value in metrics.items():
            name, _, score = key.partition("/")
            if score == "accuracy" and name.startswith(("pass@", "majority@")) and "[" not in name:
                out[name] = value
        ordered = sorted(out, key=lambda k: (k.startswith("majority"), int(k.split("@")[1])))
        return len(grouped), {k: out[k] for k in ordered}

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
