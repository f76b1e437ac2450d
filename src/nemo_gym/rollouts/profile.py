"""pass@k, majority@k and their spread, from verify results grouped by task (NeMo Gym's names).

``nemo_gym.reward_profile`` re-exports this module under NeMo Gym's path.

A resources server's ``compute_metrics(tasks)`` receives ``tasks[i]``, the verify results of
task ``i``'s rollouts in order, and typically calls :func:`compute_pass_majority_metrics`:

* ``pass@{k}/{score}``: binary scores use the unbiased estimator ``1 - C(n-c, k) / C(n, k)``
  over the task's ``n`` rollouts of which ``c`` scored 1; other scores take the best of the
  first ``k`` rollouts. Tasks with fewer than ``k`` scored rollouts are left out.
* ``pass@1[avg-of-{k}]/{score}``: the mean score of the first ``k`` rollouts.
* ``majority@{k}/{score}`` (with ``answer_key``): the score of the most frequent
  ``(answer, score)`` pair among the first ``k`` rollouts with an answer (ties averaged; 0 when
  none answered); ``no_answer`` becomes a score of its own.
* ``pass@1[avg-of-{k}]/{score}/std_dev_across_runs`` and ``std_err_across_runs``: the sample
  standard deviation (and its standard error) of per-run accuracies, run ``i`` being every
  task's ``i``-th rollout (``per_sample_aggregate``).

Every value except the spreads' inputs is a percentage (0-100). :func:`highest_k_metrics` picks
the entries of the largest ``k`` for a headline (``get_key_metrics``).

Neighbours: ``nemo_gym.base_resources_server`` (where ``compute_metrics`` is defined),
``nemo_gym.rollouts.stats`` (the unbiased pass@k estimator, the one the viewer and
``ng_collect_rollouts``'s summary use too).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from nemo_gym.rollouts.stats import pass_at_k

__all__ = [
    "add_avg_sample_std_dev",
    "compute_pass_majority_metrics",
    "compute_subset_metrics",
    "highest_k_metrics",
]

Rollout = Mapping[str, Any]
ScoreFn = Callable[[Rollout], Mapping[str, float | bool]]
_STAT_SUFFIXES = ("std_dev_across_runs", "std_err_across_runs", "avg_sample_std_dev")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _default_score(rollout: Rollout) -> dict[str, float]:
    return {"accuracy": rollout["reward"]}


def _pass_at_k(values: list[float], k: int) -> float:
    if all(v in (0, 1) for v in values):  # the one unbiased estimator Gym has (rollouts.stats)
        return pass_at_k(len(values), sum(1 for v in values if v), k)
    return max(values[:k])


def _majority(pairs: list[tuple[Any, float]]) -> float:
    if not pairs:
        return 0.0
    counts = Counter(pairs)
    top = max(counts.values())
    return _mean([score for (_, score), count in counts.items() if count == top])


def compute_pass_majority_metrics(
    tasks: list[list[dict[str, Any]]],
    score_fn: ScoreFn | None = None,
    answer_key: str | None = None,
) -> tuple[dict[str, Any], list[list[dict[str, float]]], list[str], int]:
    """pass@k, pass@1[avg-of-k], majority@k and spreads (see module docstring).

    Args:
        tasks: ``tasks[i]`` holds the verify results of task ``i``'s rollouts.
        score_fn: a rollout's named scores; by default ``{"accuracy": reward}``.
        answer_key: the field holding the extracted answer (enables majority@k, no_answer).

    Returns:
        ``(metrics, scores, score_names, max_k)``: the flat metrics (plus
        ``per_sample_aggregate``), each rollout's scores by task, the sorted score names, and
        the most rollouts any task has.
    """
    if not tasks:
        return {}, [], [], 0
    score = score_fn or _default_score
    scores: list[list[dict[str, float]]] = []
    answers: list[list[Any]] = []
    for rollouts in tasks:
        task_scores = []
        for rollout in rollouts:
            named = {k: float(v) if isinstance(v, bool) else v for k, v in score(rollout).items()}
            if answer_key is not None:
                named["no_answer"] = float(rollout.get(answer_key) is None)
            task_scores.append(named)
        scores.append(task_scores)
        answers.append([r.get(answer_key) for r in rollouts] if answer_key else [])
    names = sorted({name for task in scores for s in task for name in s})
    max_k = max(len(task) for task in scores)

    metrics: dict[str, Any] = {}
    for k in range(1, max_k + 1):
        for name in names:
            passes = []
            firsts = []
            majorities = []
            for task, task_answers in zip(scores, answers, strict=True):
                values = [s[name] for s in task if name in s]
                if values and k <= len(values):
                    passes.append(_pass_at_k(values, k))
                head = [s[name] for s in task[:k] if name in s]
                if head:
                    firsts.append(_mean(head))
                if answer_key is not None:
                    pairs = [
                        (a, s[name])
                        for a, s in zip(task_answers[:k], task[:k], strict=True)
                        if a is not None and name in s
                    ]
                    majorities.append(_majority(pairs))
            if passes:
                metrics[f"pass@{k}/{name}"] = 100.0 * _mean(passes)
            if firsts:
                metrics[f"pass@1[avg-of-{k}]/{name}"] = 100.0 * _mean(firsts)
            if majorities:
                metrics[f"majority@{k}/{name}"] = 100.0 * _mean(majorities)

    per_run: dict[str, list[float]] = {}
    for run in range(max_k):
        for name in names:
            values = [t[run][name] for t in scores if run < len(t) and name in t[run]]
            if values:
                per_run.setdefault(name, []).append(100.0 * _mean(values))
    metrics["per_sample_aggregate"] = per_run
    for k in range(2, max_k + 1):
        for name in names:
            runs = per_run.get(name, [])[:k]
            if len(runs) >= 2:
                spread = statistics.stdev(runs)
                metrics[f"pass@1[avg-of-{k}]/{name}/std_dev_across_runs"] = spread
                metrics[f"pass@1[avg-of-{k}]/{name}/std_err_across_runs"] = spread / math.sqrt(
                    len(runs)
                )
    return metrics, scores, names, max_k


def add_avg_sample_std_dev(
    metrics: dict[str, Any],
    all_score_dicts: list[list[dict[str, float]]],
    score_names: list[str],
    max_k: int,
) -> None:
    """Add ``pass@1[avg-of-{k}]/{name}/avg_sample_std_dev`` to ``metrics`` (in place): the mean
    over tasks of the sample standard deviation of each task's first ``k`` scores."""
    for k in range(2, max_k + 1):
        for name in score_names:
            spreads = []
            for task in all_score_dicts:
                values = [s[name] for s in task[:k] if name in s]
                if len(values) >= 2:
                    spreads.append(statistics.stdev(values))
            if spreads:
                metrics[f"pass@1[avg-of-{k}]/{name}/avg_sample_std_dev"] = _mean(spreads)


def compute_subset_metrics(
    tasks: list[list[dict[str, Any]]],
    subset_key: str,
    score_fn: ScoreFn | None = None,
    answer_key: str | None = None,
) -> dict[str, Any]:
    """:func:`compute_pass_majority_metrics` per value of ``subset_key`` (read from each task's
    first rollout; tasks without a value are left out), keys prefixed ``"{value}/"``."""
    subsets: dict[Any, list[list[dict[str, Any]]]] = {}
    for rollouts in tasks:
        value = rollouts[0].get(subset_key) if rollouts else None
        if value:
            subsets.setdefault(value, []).append(rollouts)
    out: dict[str, Any] = {}
    for value, subset in subsets.items():
        metrics = compute_pass_majority_metrics(subset, score_fn, answer_key)[0]
        metrics.pop("per_sample_aggregate", None)
        out.update({f"{value}/{key}": v for key, v in metrics.items()})
    return out


def highest_k_metrics(
    agent_metrics: Mapping[str, Any],
    pattern: str,
    score_names: list[str] | None = None,
    exclude_names: list[str] | None = None,
) -> dict[str, Any]:
    """The entries ``{pattern}/{score}`` at the largest ``k``, ``pattern`` holding ``{k}``
    (e.g. ``"pass@{k}"``); spread statistics are never included.

    Args:
        agent_metrics: the metrics to pick from.
        pattern: the metric name up to the score, with ``{k}`` where ``k`` goes.
        score_names: keep only these scores.
        exclude_names: drop these scores.
    """
    regex = re.compile("^" + re.escape(pattern).replace(r"\{k\}", r"(\d+)") + "/(.+)$")
    found: list[tuple[int, str]] = []
    for key in agent_metrics:
        match = regex.match(key)
        if match is None:
            continue
        name = match.group(2)
        if name.endswith(_STAT_SUFFIXES):
            continue
        if score_names is not None and name not in score_names:
            continue
        if exclude_names is not None and name in exclude_names:
            continue
        found.append((int(match.group(1)), key))
    if not found:
        return {}
    top = max(k for k, _ in found)
    return {key: agent_metrics[key] for k, key in found if k == top}
