"""TRL's ``GRPOTrainer`` collecting its rollouts through Gym's servers.

``GRPOTrainer(..., rollout_func=gym_rollout_func(agent, head), reward_funcs=gym_reward)``:
for each prompt TRL hands over (its sampler repeats each prompt ``num_generations`` times) the
rollout function builds a Gym row, runs it through the agent in training mode at the trainer's
temperature and top_p (see ``batch.py``), and returns TRL's dict: ``prompt_ids`` (the first
model turn's prompt), ``completion_ids`` (every later token: model turns, tool output, chat glue),
``logprobs`` (the sampler's, 0.0 on tokens the model did not sample) and ``env_mask`` (1 on
tokens the model chose; tool output and grammar-forced tokens 0), laid out by
:mod:`nemo_gym.training`, plus ``gym_reward`` (the verifier's reward), ``gym_status`` and
``gym_rollout_id``, which TRL forwards to the reward functions. :func:`gym_reward` returns Gym's
reward unchanged. A failed rollout has no reward: ``None`` (TRL gives it no advantage), a
one-token completion with ``env_mask`` 0, and a warning naming the failure; never 0.

Where the prompts come from: with ``rows`` (Gym rows, e.g. an environment's JSONL), each TRL
prompt is looked up among the rows' prompts, so the row's other fields (tools, the verifier's
expected answer) go with it; :func:`prompt_dataset` makes TRL's dataset from the same rows.
Without ``rows``, a prompt becomes a row of its own with ``responses_create_params`` around it.

No TRL import here: the trainer is read through its attributes (``temperature``, ``top_p``,
``max_completion_length``, ``processing_class``). Neighbours: ``skyrl.py`` (the same for SkyRL).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from nemo_gym.integrations.batch import (
    Sampling,
    as_input,
    chat_prompt,
    collect_batch,
    prompt_key,
    rollout_record,
    run_sync,
    training_row,
)
from nemo_gym.rollouts.records import STATUS_KEY
from nemo_gym.rollouts.trainer_api import DEFAULT_ROLLOUT_TIMEOUT_S, RolloutCollectionHelper

logger = logging.getLogger(__name__)
REWARD_KEY = "gym_reward"
TOKEN_KEYS = ("prompt_ids", "completion_ids", "logprobs", "env_mask")


def prompt_dataset(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL dataset records for Gym rows: ``prompt`` (chat messages) and ``gym_task_index``.

    ``datasets.Dataset.from_list(prompt_dataset(rows))`` is a ``train_dataset`` for the rollout
    function built with the same ``rows``.
    """
    return [
        {"prompt": chat_prompt(row, f"row {i}"), "gym_task_index": i} for i, row in enumerate(rows)
    ]


class GymRolloutFunc:
    """A TRL ``rollout_func`` (``f(prompts, trainer) -> dict``); see the module docstring.

    ``last_rows`` holds Gym's rows of the latest call, in TRL's order.
    """

    def __init__(
        self,
        agent_name: str | None,
        head_server_config: Any,
        rows: Sequence[dict[str, Any]] | None = None,
        responses_create_params: dict[str, Any] | None = None,
        max_concurrency: int | None = None,
        rollout_timeout_s: float = DEFAULT_ROLLOUT_TIMEOUT_S,
    ) -> None:
        self.agent_name = agent_name
        self.head_server_config = head_server_config
        self.responses_create_params = dict(responses_create_params or {})
        self.max_concurrency = max_concurrency
        self.helper = RolloutCollectionHelper(rollout_timeout_s=rollout_timeout_s)
        self.last_rows: list[dict[str, Any]] = []
        self.calls = 0
        self._by_prompt: dict[str, tuple[int, dict[str, Any]]] | None = None
        if rows is not None:
            self._by_prompt = {}
            for index, row in enumerate(rows):
                key = prompt_key(chat_prompt(row, f"row {index}"))
                seen = self._by_prompt.get(key)
                if seen is not None and seen[1] != row:
                    raise ValueError(
                        f"rows {seen[0]} and {index} have the same prompt but differ otherwise; "
                        "TRL hands over only the prompt, so it could not tell them apart"
                    )
                self._by_prompt.setdefault(key, (index, row))

    def gym_rows(self, prompts: Sequence[Any], sampling: Sampling) -> list[dict[str, Any]]:
        """The Gym rows for TRL's prompts (repeats of a prompt get rollout indices 0, 1, ...)."""
        self.calls += 1
        repeats: dict[str, int] = {}
        distinct: dict[str, int] = {}
        out = []
        for position, prompt in enumerate(prompts):
            where = f"prompt {position} of rollout call {self.calls}"
            key = prompt_key(prompt)
            if self._by_prompt is not None:
                if key not in self._by_prompt:
                    raise ValueError(f"{where} is not among the rows' prompts: {key[:300]}")
                task, base = self._by_prompt[key]
                group = f"task-{task}"
            else:
                task = distinct.setdefault(key, len(distinct))
                base = {"responses_create_params": {**self.responses_create_params}}
                base["responses_create_params"]["input"] = as_input(prompt, where)
                group = "prompt-" + hashlib.sha1(key.encode()).hexdigest()[:12]
            repeat = repeats[key] = repeats.get(key, -1) + 1
            ids = {
                "_ng_task_index": task,
                "_ng_rollout_index": repeat,
                "_ng_group_id": group,
                "_ng_rollout_id": f"{group}-c{self.calls}-r{repeat}",
            }
            out.append(training_row(base, self.agent_name, sampling, ids, where))
        return out

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        rows = self.gym_rows(prompts, sampling_of(trainer))
        results = run_sync(
            lambda: collect_batch(rows, self.head_server_config, self.helper, self.max_concurrency)
        )
        self.last_rows = results
        out: dict[str, list[Any]] = {
            key: [] for key in (*TOKEN_KEYS, REWARD_KEY, "gym_status", "gym_rollout_id")
        }
        failures = []
        for position, (prompt, row) in enumerate(zip(prompts, results, strict=True)):
            where = f"rollout {position} of call {self.calls} ({row.get('_ng_rollout_id')})"
            record, why = rollout_record(row, where)
            status = str(row.get(STATUS_KEY) or "failed")
            if record is None:
                failures.append(why)
                logger.warning("%s; its reward is None and its tokens are masked out", why)
                record = {**_placeholder(prompt, trainer), "reward": None}
                status = status if status == "failed" else "unusable"
            for key in TOKEN_KEYS:
                out[key].append(record[key])
            out[REWARD_KEY].append(record["reward"])
            out["gym_status"].append(status)
            out["gym_rollout_id"].append(row.get("_ng_rollout_id"))
        if failures and len(failures) == len(results):
            raise RuntimeError(
                f"all {len(results)} rollouts of this batch failed; the first: {failures[0]}"
            )
        return out


def sampling_of(trainer: Any) -> Sampling:
    """The trainer's sampling settings, which the rollouts must use.

    ``max_completion_length`` caps each model turn (a row's own ``max_output_tokens`` wins), so
    a multi-turn completion can be longer. Settings a Responses API request cannot carry are
    refused rather than ignored.

    Raises:
        ValueError: the trainer sets ``top_k``, ``min_p`` or ``repetition_penalty``.
    """
    unsupported = {
        "top_k": getattr(trainer, "top_k", None) not in (None, 0, -1),
        "min_p": getattr(trainer, "min_p", None) not in (None, 0, 0.0),
        "repetition_penalty": getattr(trainer, "repetition_penalty", None) not in (None, 1, 1.0),
    }
    named = [f"{k}={getattr(trainer, k)}" for k, on in unsupported.items() if on]
    if named:
        raise ValueError(
            f"the trainer samples with {', '.join(named)}, which Gym's rollouts (temperature and "
            "top_p only) would not apply; leave them at their defaults"
        )
    return Sampling(
        temperature=float(trainer.temperature),
        top_p=float(getattr(trainer, "top_p", None) or 1.0),
        max_output_tokens=getattr(trainer, "max_completion_length", None),
    )


def gym_rollout_func(
    agent_name: str | None,
    head_server_config: Any,
    rows: Sequence[dict[str, Any]] | None = None,
    responses_create_params: dict[str, Any] | None = None,
    max_concurrency: int | None = None,
    rollout_timeout_s: float = DEFAULT_ROLLOUT_TIMEOUT_S,
) -> GymRolloutFunc:
    """A ``rollout_func`` for ``GRPOTrainer`` that collects through Gym (module docstring).

    Args:
        agent_name: the agent for rows without an ``agent_ref``.
        head_server_config: where Gym's head server is (``host`` and ``port``).
        rows: Gym rows whose prompts make TRL's dataset (see :func:`prompt_dataset`).
        responses_create_params: without ``rows``, the other request fields (e.g. ``tools``).
        max_concurrency: most rollouts in flight at once (default: all of the batch).
    """
    return GymRolloutFunc(
        agent_name,
        head_server_config,
        rows=rows,
        responses_create_params=responses_create_params,
        max_concurrency=max_concurrency,
        rollout_timeout_s=rollout_timeout_s,
    )


def gym_reward(
    completions: list[Any], gym_reward: list[float | None] | None = None, **_: Any
) -> list[float | None]:
    """TRL reward function: Gym's verified reward of each rollout (``None`` if it failed)."""
    if gym_reward is None:
        raise ValueError("gym_reward reads the gym_reward field that gym_rollout_func returns")
    if len(gym_reward) != len(completions):
        raise ValueError(f"{len(gym_reward)} Gym rewards for {len(completions)} completions")
    return list(gym_reward)


def _placeholder(prompt: Any, trainer: Any) -> dict[str, list[Any]]:
    """Token fields for a rollout with nothing to train on: the prompt and one masked token."""
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    if isinstance(prompt, str):
        text = prompt
    else:
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    prompt_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    return {"prompt_ids": prompt_ids, "completion_ids": [eos], "logprobs": [0.0], "env_mask": [0]}
