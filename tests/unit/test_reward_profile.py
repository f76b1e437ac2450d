"""``nemo_gym.reward_profile`` against values computed by hand.

Two tasks of three rollouts: task A rewards 1, 0, 1 with answers a, b, a; task B rewards
0, 0, 1 with answers None, c, d.

* pass@1: A = 1 - C(1,1)/C(3,1) = 2/3, B = 1 - C(2,1)/C(3,1) = 1/3 -> 50.
* pass@2: A = 1 (one failure < 2), B = 1 - C(2,2)/C(3,2) = 2/3 -> 83.33.
* pass@3: both 1 -> 100.
* pass@1[avg-of-2]: A = 1/2, B = 0 -> 25.
* per run: run 1 = 50, run 2 = 0, run 3 = 100; std over runs 1-2 = sqrt(1250) = 35.355,
  std error = 35.355/sqrt(2) = 25; over runs 1-3: std = 50, std error = 50/sqrt(3) = 28.868.
* majority@3: A: (a,1) twice -> 1; B: (c,0) and (d,1) tie -> 0.5 -> 75. majority@1: A = 1,
  B has no answer -> 0 -> 50.
* no_answer: A never, B's first rollout: pass@1/no_answer = (0 + 1/3)/2 = 16.67.
"""

from __future__ import annotations

import math

import pytest

from nemo_gym.reward_profile import (
    add_avg_sample_std_dev,
    compute_pass_majority_metrics,
    compute_subset_metrics,
    highest_k_metrics,
)


def _tasks() -> list[list[dict[str, object]]]:
    a = [("a", 1.0), ("b", 0.0), ("a", 1.0)]
    b = [(None, 0.0), ("c", 0.0), ("d", 1.0)]
    return [
        [{"reward": r, "answer": ans, "level": "easy"} for ans, r in a],
        [{"reward": r, "answer": ans, "level": "hard"} for ans, r in b],
    ]


def test_pass_at_k_and_average_of_k() -> None:
    metrics, scores, names, max_k = compute_pass_majority_metrics(_tasks())
    assert names == ["accuracy"] and max_k == 3 and len(scores) == 2
    assert metrics["pass@1/accuracy"] == pytest.approx(50.0)
    assert metrics["pass@2/accuracy"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert metrics["pass@3/accuracy"] == pytest.approx(100.0)
    assert metrics["pass@1[avg-of-2]/accuracy"] == pytest.approx(25.0)
    assert metrics["pass@1[avg-of-3]/accuracy"] == pytest.approx(50.0)
    assert metrics["per_sample_aggregate"] == {"accuracy": [50.0, 0.0, 100.0]}
    assert metrics["pass@1[avg-of-2]/accuracy/std_dev_across_runs"] == pytest.approx(
        math.sqrt(1250)
    )
    assert metrics["pass@1[avg-of-2]/accuracy/std_err_across_runs"] == pytest.approx(25.0)
    assert metrics["pass@1[avg-of-3]/accuracy/std_dev_across_runs"] == pytest.approx(50.0)
    assert metrics["pass@1[avg-of-3]/accuracy/std_err_across_runs"] == pytest.approx(
        50 / math.sqrt(3)
    )
    assert not any(k.startswith("majority@") for k in metrics)


def test_majority_and_no_answer() -> None:
    metrics, _, names, _ = compute_pass_majority_metrics(_tasks(), answer_key="answer")
    assert names == ["accuracy", "no_answer"]
    assert metrics["majority@1/accuracy"] == pytest.approx(50.0)
    assert metrics["majority@3/accuracy"] == pytest.approx(75.0)
    assert metrics["pass@1/no_answer"] == pytest.approx(100 * (1 / 3) / 2)


def test_continuous_scores_take_the_best_of_k() -> None:
    tasks = [[{"reward": 0.2}, {"reward": 0.9}, {"reward": 0.5}]]
    metrics, *_ = compute_pass_majority_metrics(tasks)
    assert metrics["pass@1/accuracy"] == pytest.approx(20.0)
    assert metrics["pass@2/accuracy"] == pytest.approx(90.0)


def test_custom_scores_booleans_count_as_one_and_zero() -> None:
    tasks = [[{"reward": 1.0, "ok": True}, {"reward": 0.0, "ok": False}]]
    metrics, *_ = compute_pass_majority_metrics(tasks, score_fn=lambda r: {"ok": r["ok"]})
    assert metrics["pass@1/ok"] == pytest.approx(50.0)
    assert metrics["pass@2/ok"] == pytest.approx(100.0)


def test_empty_input() -> None:
    assert compute_pass_majority_metrics([]) == ({}, [], [], 0)


def test_avg_sample_std_dev() -> None:
    metrics, scores, names, max_k = compute_pass_majority_metrics(_tasks())
    add_avg_sample_std_dev(metrics, scores, names, max_k)
    # k=2: A [1, 0] -> 0.7071, B [0, 0] -> 0; mean 0.35355
    assert metrics["pass@1[avg-of-2]/accuracy/avg_sample_std_dev"] == pytest.approx(
        math.sqrt(0.5) / 2
    )
    # k=3: A and B each have one odd value out of three: std sqrt(1/3) each
    assert metrics["pass@1[avg-of-3]/accuracy/avg_sample_std_dev"] == pytest.approx(
        math.sqrt(1 / 3)
    )


def test_subset_metrics_by_field() -> None:
    metrics = compute_subset_metrics(_tasks(), "level")
    assert metrics["easy/pass@1/accuracy"] == pytest.approx(100 * 2 / 3)
    assert metrics["hard/pass@1/accuracy"] == pytest.approx(100 * 1 / 3)
    assert not any(k.endswith("per_sample_aggregate") for k in metrics)


def test_highest_k_metrics() -> None:
    metrics, *_ = compute_pass_majority_metrics(_tasks(), answer_key="answer")
    assert highest_k_metrics(metrics, "pass@{k}", score_names=["accuracy"]) == {
        "pass@3/accuracy": pytest.approx(100.0)
    }
    top = highest_k_metrics(metrics, "pass@1[avg-of-{k}]", exclude_names=["no_answer"])
    assert top == {"pass@1[avg-of-3]/accuracy": pytest.approx(50.0)}
    assert highest_k_metrics(metrics, "unknown@{k}") == {}
