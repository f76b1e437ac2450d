"""A SkyRL generator that collects through Gym's servers.

SkyRL's trainer asks a generator for ``await generate(input_batch)``; the batch holds ``prompts``
(chat messages), ``env_classes``, ``env_extras`` (each example's other dataset fields),
``sampling_params`` and ``trajectory_ids`` (``instance_id``, ``repetition_id``), and the answer
holds, in the same order, ``prompt_token_ids``, ``response_ids``, ``rewards``, ``loss_masks``,
``stop_reasons``, ``rollout_logprobs``, ``trajectory_ids`` and ``rollout_metrics``. This
generator is written against that documented shape (``skyrl/train/generators/base.py``),
duck-typed, without importing SkyRL; it has not been run inside SkyRL's trainer.

Each example becomes a Gym row: its ``env_extras`` are the row's fields (e.g. the verifier's
expected answer, ``responses_create_params.tools``), its prompt the row's input, and its agent
the extras' ``agent_ref``, else the generator's ``agent_name``, else its ``env_class``. Rows run
in training mode at the batch's temperature and top_p (``batch.py``). Tokens, loss mask (tool
output and grammar-forced tokens 0) and log-probs come from :mod:`nemo_gym.training`.

SkyRL has no "unscored" reward: a failed rollout raises :class:`FailedRolloutsError` unless the
user names a score for failed rows (``FailedRowPolicy.parse("score:0")``), in which case it
becomes the prompt and one masked end-of-text token (a ``tokenizer`` is then needed) with that
score. Neighbours: ``trl.py`` (the same for TRL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nemo_gym.integrations.batch import (
    Sampling,
    as_input,
    collect_batch,
    rollout_record,
    training_row,
)
from nemo_gym.rollouts.records import FAILURE_KEY, STATUS_KEY
from nemo_gym.rollouts.trainer_api import DEFAULT_ROLLOUT_TIMEOUT_S, RolloutCollectionHelper
from nemo_gym.training import FailedRowPolicy

#: SkyRL's stop reasons (vLLM's) for Gym's row statuses.
STOP_REASONS = {"completed": "stop", "truncated": "length"}


class FailedRolloutsError(RuntimeError):
    """Rollouts of a batch failed and no score for failed rows was named."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(
            f"{len(reasons)} rollouts failed (name a score for them with "
            f"failed=FailedRowPolicy.parse('score:<number>') to train on): {reasons[0]}"
        )


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


class GymGenerator:
    """SkyRL's ``GeneratorInterface`` over Gym's servers (see the module docstring)."""

    def __init__(
        self,
        head_server_config: Any,
        agent_name: str | None = None,
        failed: FailedRowPolicy | None = None,
        tokenizer: Any = None,
        max_concurrency: int | None = None,
        rollout_timeout_s: float = DEFAULT_ROLLOUT_TIMEOUT_S,
        helper: RolloutCollectionHelper | None = None,
    ) -> None:
        self.head_server_config = head_server_config
        self.agent_name = agent_name
        self.failed = failed or FailedRowPolicy()
        if self.failed.score is not None and tokenizer is None:
            raise ValueError("scoring failed rollouts needs a tokenizer for their prompt tokens")
        self.tokenizer = tokenizer
        self.max_concurrency = max_concurrency
        self.helper = helper or RolloutCollectionHelper(rollout_timeout_s=rollout_timeout_s)
        self.last_rows: list[dict[str, Any]] = []

    def gym_rows(self, input_batch: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The Gym rows for a SkyRL batch, in its order."""
        prompts = list(input_batch["prompts"])
        n = len(prompts)
        classes = list(input_batch.get("env_classes") or [None] * n)
        extras = list(input_batch.get("env_extras") or [{}] * n)
        trajectories = input_batch.get("trajectory_ids")
        params = input_batch.get("sampling_params") or {}
        sampling = Sampling(
            temperature=float(params.get("temperature", 1.0)),
            top_p=float(params.get("top_p", 1.0)),
            max_output_tokens=params.get("max_generate_length") or params.get("max_tokens"),
        )
        if not len(classes) == len(extras) == n or (trajectories and len(trajectories) != n):
            raise ValueError("prompts, env_classes, env_extras and trajectory_ids differ in length")
        tasks: dict[str, int] = {}
        rows = []
        for i, (prompt, env_class, extra) in enumerate(zip(prompts, classes, extras, strict=True)):
            where = f"example {i} of the batch"
            if trajectories:
                instance = str(_field(trajectories[i], "instance_id"))
                repeat = int(_field(trajectories[i], "repetition_id"))
            else:
                instance, repeat = f"example-{i}", 0
            base = dict(extra or {})
            request = dict(base.get("responses_create_params") or {})
            request["input"] = as_input(prompt, where)
            base["responses_create_params"] = request
            ids = {
                "_ng_task_index": tasks.setdefault(instance, len(tasks)),
                "_ng_rollout_index": repeat,
                "_ng_group_id": instance,
                "_ng_rollout_id": f"{instance}_{repeat}",
            }
            rows.append(training_row(base, self.agent_name or env_class, sampling, ids, where))
        return rows

    async def generate(self, input_batch: Mapping[str, Any]) -> dict[str, Any]:
        """SkyRL's ``GeneratorOutput`` for ``input_batch`` (module docstring)."""
        rows = self.gym_rows(input_batch)
        results = await collect_batch(
            rows, self.head_server_config, self.helper, self.max_concurrency
        )
        self.last_rows = results
        out: dict[str, Any] = {
            key: []
            for key in (
                "prompt_token_ids",
                "response_ids",
                "rewards",
                "loss_masks",
                "stop_reasons",
                "rollout_logprobs",
            )
        }
        reasons: list[str] = []
        for i, row in enumerate(results):
            record, why = rollout_record(row, f"example {i} ({row.get('_ng_rollout_id')})")
            if record is None:
                reasons.append(why)
                if self.failed.score is None:
                    continue
                record = self._placeholder(input_batch["prompts"][i], self.failed.score)
            out["prompt_token_ids"].append(record["prompt_ids"])
            out["response_ids"].append(record["completion_ids"])
            out["rewards"].append(float(record["reward"]))
            out["loss_masks"].append(record["env_mask"])
            out["rollout_logprobs"].append(record["logprobs"])
            status = str(row.get(STATUS_KEY))
            stop = STOP_REASONS.get(status, "error") if not why else "error"
            out["stop_reasons"].append(stop)
        if reasons and self.failed.score is None:
            raise FailedRolloutsError(reasons)
        out["trajectory_ids"] = input_batch.get("trajectory_ids")
        scored = [r for r in results if r.get(STATUS_KEY) != "failed"]
        out["rollout_metrics"] = {
            "gym/rollouts": len(results),
            "gym/failed": len(results) - len(scored),
            "gym/truncated": sum(1 for r in scored if r.get(STATUS_KEY) == "truncated"),
            "gym/failure_kinds": sorted(
                {str((r.get(FAILURE_KEY) or {}).get("kind")) for r in results if r not in scored}
            ),
        }
        return out

    def _placeholder(self, prompt: Any, score: float) -> dict[str, Any]:
        tok = self.tokenizer
        text = (
            prompt
            if isinstance(prompt, str)
            else tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        )
        return {
            "prompt_ids": list(tok(text, add_special_tokens=False)["input_ids"]),
            "completion_ids": [tok.eos_token_id],
            "env_mask": [0],
            "logprobs": [0.0],
            "reward": score,
        }

