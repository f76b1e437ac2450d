"""The closed training loop: collect -> GRPO update -> write GGUF -> reload -> collect again.

Runs against servers that are already up (``ng_train_loop`` starts them with ``ng_run``): an
agent's ``/run`` for rollouts and ``local_model``'s ``/load_weights`` for new weights. Every
rollout comes from the real model server in training mode, with a fixed seed per (task,
repeat), the same in every iteration, so a run is reproducible and iterations are compared
rollout for rollout. Iteration 0 only measures; each later iteration updates the transformers
copy of the served model on the previous iteration's training rollouts (``grpo.py``), writes it
as F16 GGUF (``convert.py``), makes the server load it, and collects the training and held-out
tasks again; ``report.py`` summarises the rewards.

Needs the ``[train]`` extra. Neighbours: ``cli/train_loop.py`` (the command), ``samples.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
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
from nemo_gym.training import extra
from nemo_gym.training.grpo import GrpoSettings, UpdateStats, grpo_update
from nemo_gym.training.report import IterationResult, summarise_rewards
from nemo_gym.training.samples import (
    FailedRowPolicy,
    SampleError,
    TokenSample,
    build_sample,
    row_reward,
)

logger = logging.getLogger(__name__)


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


def policy_versions(rows: list[dict[str, Any]]) -> set[str]:
    """The ``policy.version`` of every model turn in ``rows``."""
    versions = set()
    for row in rows:
        for item in (row.get("response") or {}).get("output") or []:
            policy = item.get("policy")
            if isinstance(policy, dict) and policy.get("version"):
                versions.add(str(policy["version"]))
    return versions


async def load_weights(model_url: str, path: Path, timeout_s: float = 600.0) -> str:
    """Load the GGUF at ``path`` into the ``local_model`` at ``model_url``; return the policy
    version it reports (used by this loop and by TRL's ``GymWeightSync``).

    Raises:
        LoopError: the server did not take the file.
    """
    http = HttpClient(timeout_s=timeout_s)
    try:
        resp = await http.request(
            "POST", model_url + "/load_weights", json={"model_path": str(path)}, retry=NO_RETRY
        )
    finally:
        await http.close()
    if not resp.ok:
        raise LoopError(
            f"{model_url}/load_weights answered {resp.status}: "
            f"{resp.body[:500].decode(errors='replace')}"
        )
    return str(resp.json_sync()["policy"]["version"])


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
        torch = extra.torch()

        self.run_url, self.model_url = run_url, model_url
        self.train_rows, self.heldout_rows = train_rows, heldout_rows
        self.model, self.template = model, template
        self.output_dir, self.settings = output_dir, settings
        torch.manual_seed(settings.seed)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.grpo.learning_rate, weight_decay=0.0
        )

    async def collect(
        self, rows: list[dict[str, Any]], name: str, repeats: int, seed_base: int
    ) -> list[dict[str, Any]]:
        """Run ``rows`` x ``repeats`` through the agent in training mode; return the rows."""
        s = self.settings
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
                run_url=lambda task: self.run_url,  # one agent for every task
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
        return await load_weights(self.model_url, path)

    def samples(self, rows: list[dict[str, Any]]) -> list[TokenSample]:
        """Token samples of the rows in (task, repeat) order, whatever order they finished in
        (failed rows dropped, unusable rows logged and skipped)."""
        out = []
        for row in sorted(rows, key=lambda r: (r["_ng_task_index"], r["_ng_repeat_index"])):
            where = f"task {row.get('_ng_task_index')} repeat {row.get('_ng_repeat_index')}"
            reward = row_reward(row, FailedRowPolicy(), where)
            if reward is None:
                continue
            try:
                out.append(build_sample(row, reward, where))
            except SampleError as exc:
                logger.warning("not trained on: %s", exc)
        return out

    async def measure(
        self, iteration: int, seconds: dict[str, float]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        s = self.settings
        started = time.monotonic()
        # The same seeds every iteration: a task's k-th rollout is compared with its k-th
        # rollout under the previous weights (paired), so a change is the weights', not luck's.
        train = await self.collect(self.train_rows, f"train-{iteration}", s.repeats, s.seed * 7_919)
        heldout = await self.collect(
            self.heldout_rows, f"heldout-{iteration}", s.heldout_repeats, s.seed * 7_919 + 500_009
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
            grpo = dataclasses.replace(self.settings.grpo, seed=self.settings.seed + iteration)
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
