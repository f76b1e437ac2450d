#!/usr/bin/env python
"""Benchmark of one closed-loop iteration on CPU: seconds per phase and the update's tokens/s.

Not a test: it measures. Runs ``ng_train_loop`` (weather_condition, the embedded SmolLM2) for
one iteration and reads its ``loop.json``:

    .venv/bin/python bench/train_loop_bench.py [--tasks 8] [--repeats 4] [--out bench/out]

Phases: collect (training tasks x repeats plus held-out tasks x repeats, iteration 0 and 1),
update (the GRPO step in torch; tokens/s = tokens forwarded / update seconds), export (F16
GGUF), reload (``POST /load_weights`` until the new weights serve). Needs the ``[train]`` extra.
Prints a Markdown table; the run's files stay in ``<out>/train_loop/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="training tasks")
    parser.add_argument("--repeats", type=int, default=4, help="rollouts per training task")
    parser.add_argument("--heldout-tasks", type=int, default=4)
    parser.add_argument("--heldout-repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    out = (args.out / "train_loop").resolve()
    command = [
        sys.executable, "-m", "nemo_gym.cli.train_loop", f"+output_dir={out}",
        "+iterations=1", f"+train_limit={args.tasks}", f"+repeats={args.repeats}",
        f"+heldout_limit={args.heldout_tasks}", f"+heldout_repeats={args.heldout_repeats}",
        "+seed=0",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    total = time.monotonic() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        return done.returncode
    load = next(
        (line for line in done.stdout.splitlines() if "loaded into transformers" in line), ""
    )
    before, after = json.loads((out / "loop.json").read_text())
    update = after["update"]
    rows = [
        ("collect, iteration 0 (before the update)", before["seconds"]["collect"]),
        ("update (GRPO, torch)", after["seconds"]["update"]),
        ("export (F16 GGUF)", after["seconds"]["export"]),
        ("reload (POST /load_weights)", after["seconds"]["reload"]),
        ("collect, iteration 1 (after the reload)", after["seconds"]["collect"]),
    ]
    rollouts = before["train"]["rollouts"] + before["heldout"]["rollouts"]
    print(f"One iteration: {args.tasks} training tasks x {args.repeats}, "
          f"{args.heldout_tasks} held-out x {args.heldout_repeats} ({rollouts} rollouts per "
          f"collect); whole command {total:.0f} s. {load.strip()}\n")  # fmt: skip
    print("| phase | seconds |\n| --- | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} |")
    tokens_per_s = update["tokens"] / update["seconds"]
    print(
        f"\nupdate: {update['samples']} rollouts, {update['steps']} optimiser steps, "
        f"{update['tokens']} tokens forwarded ({update['trained_tokens']} trained) -> "
        f"{tokens_per_s:.0f} tokens/s; |log-ratio| to the sampler before the first step "
        f"{update['mean_abs_log_ratio_start']:.3f} nats/token"
    )
    print(
        f"reward: train {before['train']['mean']:.3f} -> {after['train']['mean']:.3f}, "
        f"held-out {before['heldout']['mean']:.3f} -> {after['heldout']['mean']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
