"""The closed loop, CI-sized: one GRPO update of the embedded model raises its train reward.

Runs ``ng_train_loop`` as a process (it starts ``ng_run`` with weather_condition and
local_model): 6 training tasks x 4 rollouts, fixed seeds, one iteration (train reward 0.25 ->
0.75 when last run). Every rollout comes from the real local_model server; the update is torch
on CPU. Needs the ``[train]`` extra (skipped with the reason otherwise); about 2 minutes on 2
quiet cores, 5 on a loaded machine.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

for _module in ("torch", "transformers", "gguf", "accelerate"):
    pytest.importorskip(_module, reason=f"{_module} is missing: install the [train] extra")

from nemo_gym.training.convert import shipped_gguf  # noqa: E402
from tests.helpers import Proc  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.timeout(1500)]


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_one_update_raises_the_train_reward(tmp_path: Path) -> None:
    out = tmp_path / "loop"
    proc = Proc(
        [
            sys.executable, "-m", "nemo_gym.cli.train_loop", f"+output_dir={out}",
            "+iterations=1", "+train_limit=6", "+repeats=4", "+heldout_limit=1",
            "+heldout_repeats=2", "+learning_rate=3e-5", "+minibatch=4", "+seed=0",
        ]  # fmt: skip
    )
    try:
        assert proc.wait(1400) == 0, proc.text
    finally:
        proc.stop()
    results = json.loads((out / "loop.json").read_text())
    before, after = results
    assert before["train"]["rollouts"] == after["train"]["rollouts"] == 24
    assert before["train"]["failed"] == after["train"]["failed"] == 0
    # the rows' policy versions are the files' own hashes, computed here
    assert before["version"] == sha(shipped_gguf())
    assert after["version"] == sha(out / "policy-1.gguf") != before["version"]
    # the reward of each task, recomputed from the rows, and the summary agree
    rows = [json.loads(line) for line in (out / "train-1.jsonl").read_text().splitlines()]
    per_task: dict[int, list[float]] = {}
    for row in rows:
        per_task.setdefault(row["_ng_task_index"], []).append(row["reward"])
    mean = sum(sum(v) / len(v) for v in per_task.values()) / len(per_task)
    assert after["train"]["mean"] == pytest.approx(mean)
    assert after["train"]["mean"] > before["train"]["mean"], proc.text
    assert after["update"]["samples"] > 0 and after["update"]["steps"] > 0
    assert set(after["seconds"]) == {"update", "export", "reload", "collect"}
    lines = [line for line in proc.lines if line.strip().startswith(("0  ", "1  "))]
    assert len(lines) == 2 and after["version"] in lines[1], proc.text
    assert (out / "reward.png").read_bytes()[:4] == b"\x89PNG"
