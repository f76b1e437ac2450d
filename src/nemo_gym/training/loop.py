"""The closed training loop: collect -> GRPO update -> write GGUF -> reload -> collect again.

Runs against servers that are already up (``ng_train_loop`` starts them with ``ng_run``): an
agent's ``/run`` for rollouts and ``local_model``'s ``/load_weights`` for new weights. Every
rollout comes from the real model server in training mode, with a fixed seed per (task,
repeat), the same in every iteration, so a run is reproducible and iterations are compared
rollout for rollout. Iteration 0 only measures; each later iteration
updates the transformers copy of the served model on the previous iteration's training
rollouts (``grpo.py``), writes it as F16 GGUF (``convert.py``), makes the server load it, and
collects the training and held-out tasks again. Rewards are summarised per task first (the
repeats of a task are not independent), with a Student-t 95% interval over tasks; failed rows
are counted and left out, never scored 0.

Needs the ``[train]`` extra. Neighbours: ``cli/train_loop.py`` (the command), ``samples.py``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from nemo_gym.rollouts.collect import collect
from nemo_gym.rollouts.inputs import Task
from nemo_gym.rollouts.output import RowWriter
from nemo_gym.rollouts.summary import summarise
from nemo_gym.server.http_client import NO_RETRY, HttpClient
from nemo_gym.training.grpo import GrpoSettings, UpdateStats, grpo_update
from nemo_gym.training.samples import FailedRowPolicy, SampleError, build_sample, row_reward

logger = logging.getLogger(__name__)
# Student-t 0.975 quantiles by degrees of freedom (1..30); 1.96 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


class LoopError(RuntimeError):
    """The loop cannot go on (a reload refused, no usable rollouts), and why."""


@dataclass(frozen=True)
class LoopSettings:
    iterations: int = 2
    repeats: int = 8  # rollouts per training task (the GRPO group)
    heldout_repeats: int = 4
    max_output_tokens: int = 48
    temperature: float = 0.7
    seed: int = 0
    parallel: int = 4
    rollout_timeout_s: float = 600.0
    grpo: GrpoSettings = field(default_factory=GrpoSettings)


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


def policy_versions(rows: list[dict[str, Any]]) -> set[str]:
    """The ``policy.version`` of every model turn in ``rows``."""
    versions = set()
    for row in rows:
        for item in (row.get("response") or {}).get("output") or []:
            policy = item.get("policy")
            if isinstance(policy, dict) and policy.get("version"):
                versions.add(str(policy["version"]))
    return versions


class PolicyLoop:
    """The loop's state: the servers' URLs, the task rows, the torch model and its optimiser."""

    def __init__(
        self,
        *,
        run_url: str,
        model_url: str,
        train_rows: list[dict[str, Any]],
        heldout_rows: list[dict[str, Any]],
        model: Any,
        template: Path,
        output_dir: Path,
        settings: LoopSettings,
    ) -> None:
        import torch

        self.run_url, self.model_url = run_url, model_url
        self.train_rows, self.heldout_rows = train_rows, heldout_rows
        self.model, self.template = model, template
        self.output_dir, self.settings = output_dir, settings
        torch.manual_seed(settings.seed)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.grpo.learning_rate, weight_decay=0.0
        )

    async def collect(self, rows: list[dict[str, Any]], name: str, seed_base: int) -> Any:
        """Run ``rows`` x repeats through the agent in training mode; return the rows."""
        s = self.settings
        repeats = s.repeats if name.startswith("train") else s.heldout_repeats
        tasks = []
        for task_index, row in enumerate(rows):
            for repeat in range(repeats):
                params = {
                    **row["responses_create_params"],
                    "temperature": s.temperature,
                    "max_output_tokens": s.max_output_tokens,
                    "seed": seed_base + 1009 * task_index + repeat,
                    "return_token_id_information": True,
                }
                tagged = {
                    **row,
                    "responses_create_params": params,
                    "_ng_task_index": task_index,
                    "_ng_repeat_index": repeat,
                }
                tasks.append(Task(task_index, repeat, tagged))
        path = self.output_dir / f"{name}.jsonl"
        path.unlink(missing_ok=True)
        writer = RowWriter(path)
        try:
            await collect(
                tasks,
                run_url=self.run_url,
                writer=writer,
                parallel=s.parallel,
                timeout_s=s.rollout_timeout_s,
                summary=summarise([]),
                on_done=lambda: None,
            )
        finally:
            writer.close()
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    async def reload(self, path: Path) -> str:
        http = HttpClient(timeout_s=600)
        try:
            resp = await http.request(
                "POST",
                self.model_url + "/load_weights",
                json={"model_path": str(path)},
                retry=NO_RETRY,
            )
            if not resp.ok:
                raise LoopError(f"/load_weights answered {resp.status}: {resp.body[:500]!r}")
            return str(resp.json_sync()["policy"]["version"])
        finally:
            await http.close()

    def samples(self, rows: list[dict[str, Any]]) -> list[Any]:
        out = []
        for row in rows:
            where = f"task {row.get('_ng_task_index')} repeat {row.get('_ng_repeat_index')}"
            reward = row_reward(row, FailedRowPolicy(), where)
            if reward is None:
                continue
            try:
                out.append(build_sample(row, reward, where))
            except SampleError as exc:
                logger.warning("not trained on: %s", exc)
        return out

    async def measure(self, iteration: int, seconds: dict[str, float]) -> tuple[Any, Any]:
        s = self.settings
        started = time.monotonic()
        # The same seeds every iteration: a task's k-th rollout is compared with its k-th
        # rollout under the previous weights (paired), so a change is the weights', not luck's.
        train = await self.collect(self.train_rows, f"train-{iteration}", s.seed * 7_919)
        heldout = await self.collect(
            self.heldout_rows, f"heldout-{iteration}", s.seed * 7_919 + 500_009
        )
        seconds["collect"] = time.monotonic() - started
        return train, heldout

    async def run(self, on_result: Callable[[IterationResult], None]) -> list[IterationResult]:
        """Iteration 0 (measure), then ``settings.iterations`` update-and-measure rounds."""
        results = []
        seconds: dict[str, float] = {}
        train, heldout = await self.measure(0, seconds)
        results.append(self._result(0, train, heldout, seconds, None))
        on_result(results[-1])
        for iteration in range(1, self.settings.iterations + 1):
            seconds = {}
            samples = self.samples(train)
            if not samples:
                raise LoopError(f"iteration {iteration}: no usable training rollouts")
            grpo = GrpoSettings(
                **{**self.settings.grpo.__dict__, "seed": self.settings.seed + iteration}
            )
            stats = await asyncio.to_thread(grpo_update, self.model, self.optimizer, samples, grpo)
            seconds["update"] = stats.seconds
            started = time.monotonic()
            from nemo_gym.training.convert import write_gguf

            path = self.output_dir / f"policy-{iteration}.gguf"
            await asyncio.to_thread(write_gguf, self.model, self.template, path)
            seconds["export"] = time.monotonic() - started
            started = time.monotonic()
            version = await self.reload(path)
            seconds["reload"] = time.monotonic() - started
            train, heldout = await self.measure(iteration, seconds)
            result = self._result(iteration, train, heldout, seconds, stats)
            if result.version != version:
                raise LoopError(f"rows report policy {result.version}, the server loaded {version}")
            results.append(result)
            on_result(result)
        return results

    def _result(
        self,
        iteration: int,
        train: list[dict[str, Any]],
        heldout: list[dict[str, Any]],
        seconds: dict[str, float],
        stats: UpdateStats | None,
    ) -> IterationResult:
        versions = policy_versions(train + heldout)
        if len(versions) != 1:
            raise LoopError(f"iteration {iteration}: rows report policies {sorted(versions)}")
        return IterationResult(
            iteration,
            versions.pop(),
            summarise_rewards(train),
            summarise_rewards(heldout),
            {k: round(v, 2) for k, v in seconds.items()},
            stats,
        )


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
