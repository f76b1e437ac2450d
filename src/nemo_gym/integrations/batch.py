"""One trainer batch through Gym: rows built from prompts, collected in order, made samples.

Shared by ``trl.py`` and ``skyrl.py``. A trainer hands over prompts (chat messages) and the
sampling settings it computes its log-probs with; :func:`training_row` makes each a Gym row in
training mode (``return_token_id_information``) with those settings, :func:`collect_batch` runs
the rows through their agents with
:class:`~nemo_gym.rollouts.trainer_api.RolloutCollectionHelper` and returns one row per input,
in input order, failed rows included, and :func:`rollout_record` turns a row into TRL's token
record with :func:`nemo_gym.training.export` (a failed or unusable row: no record, and why).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from nemo_gym.protocol.chat_conversion import ConversionError, input_to_messages
from nemo_gym.rollouts.records import FAILURE_KEY, STATUS_KEY
from nemo_gym.rollouts.trainer_api import RolloutCollectionHelper, RolloutError
from nemo_gym.training import FailedRowPolicy, export

T = TypeVar("T")
AGENT_TYPE = "responses_api_agents"
#: Row keys that identify a rollout; copied onto a result row that does not echo them.
ID_KEYS = ("_ng_task_index", "_ng_rollout_index", "_ng_group_id", "_ng_rollout_id")


@dataclass(frozen=True)
class Sampling:
    """The sampling settings the trainer computes log-probs with; rollouts must use them."""

    temperature: float
    top_p: float = 1.0
    max_output_tokens: int | None = None


def chat_prompt(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A Gym row's prompt (``instructions`` and ``input``) as chat messages.

    Raises:
        ValueError: the row has no ``responses_create_params.input`` a chat prompt can show.
    """
    params = row.get("responses_create_params")
    if not isinstance(params, dict) or "input" not in params:
        raise ValueError(f"{where}: no responses_create_params.input to take the prompt from")
    try:
        messages = input_to_messages(params["input"], params.get("instructions"))
    except (ConversionError, KeyError, AttributeError, TypeError) as exc:
        raise ValueError(f"{where}: responses_create_params.input: {exc}") from None
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


def prompt_key(prompt: Any) -> str:
    """A prompt as a canonical string: equal for equal prompts after a dataset round trip.

    Dataset libraries fill keys a message lacks with ``None``; those are ignored.
    """
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, list) or not all(isinstance(m, dict) for m in prompt):
        raise ValueError(f"a prompt must be a string or a list of messages, not {prompt!r:.200}")
    cleaned = [{k: v for k, v in m.items() if v is not None} for m in prompt]
    return orjson.dumps(cleaned, option=orjson.OPT_SORT_KEYS).decode()


def as_input(prompt: Any, where: str) -> Any:
    """A trainer's prompt as a row's ``responses_create_params.input``."""
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, list) or not all(isinstance(m, dict) for m in prompt):
        raise ValueError(f"{where}: a prompt must be a string or a list of chat messages")
    return [{k: v for k, v in m.items() if v is not None} for m in prompt]


def training_row(
    base: dict[str, Any],
    agent_name: str | None,
    sampling: Sampling,
    ids: dict[str, Any],
    where: str,
) -> dict[str, Any]:
    """A copy of ``base`` to collect in training mode with the trainer's sampling settings.

    Raises:
        ValueError: the row sets a temperature or top_p other than the trainer's (its log-probs
            would not be the ones the trainer computes), or names no agent.
    """
    row = copy.deepcopy(base)
    params = row.setdefault("responses_create_params", {})
    for key, value in (("temperature", sampling.temperature), ("top_p", sampling.top_p)):
        given = params.get(key)
        if given is not None and not math.isclose(float(given), value):
            raise ValueError(
                f"{where}: responses_create_params.{key} is {given} but the trainer samples at "
                f"{value}; remove it from the row or set the trainer's {key}"
            )
        params[key] = value
    if sampling.max_output_tokens is not None:
        params.setdefault("max_output_tokens", sampling.max_output_tokens)
    params["return_token_id_information"] = True
    if not (row.get("agent_ref") or {}).get("name"):
        if not agent_name:
            raise ValueError(f"{where}: the row has no agent_ref and no agent_name was given")
        row["agent_ref"] = {"type": AGENT_TYPE, "name": agent_name}
    row.update(ids)
    return row


async def collect_batch(
    rows: list[dict[str, Any]],
    head_server_config: Any,
    helper: RolloutCollectionHelper,
    max_concurrency: int | None = None,
) -> list[dict[str, Any]]:
    """Collect every row; one result row per input row, in input order (failed rows too).

    Each row must carry a distinct (``_ng_task_index``, ``_ng_rollout_index``) pair, which is
    how results are matched to inputs.
    """
    slots: dict[tuple[Any, Any], int] = {}
    for index, row in enumerate(rows):
        key = (row["_ng_task_index"], row["_ng_rollout_index"])
        if key in slots:
            raise ValueError(f"rows {slots[key]} and {index} have the same task and rollout index")
        slots[key] = index
    results: list[dict[str, Any] | None] = [None] * len(rows)
    semaphore = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    for waiting in helper.run_examples(rows, head_server_config, semaphore=semaphore):
        try:
            given, result = await waiting
        except RolloutError as exc:
            given = result = exc.row
        index = slots[(given["_ng_task_index"], given["_ng_rollout_index"])]
        for name in ID_KEYS:  # a NeMo Gym agent's row need not echo Gym's ids
            if name in rows[index]:
                result.setdefault(name, rows[index][name])
        results[index] = result
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"no result came back for rows {missing}")
    return [r for r in results if r is not None]


def rollout_record(row: dict[str, Any], where: str) -> tuple[dict[str, Any] | None, str]:
    """TRL's token record of a row (``prompt_ids``, ``completion_ids``, ``logprobs``,
    ``env_mask``, ``reward``, ids), or ``None`` and why the row cannot be trained on."""
    if row.get(STATUS_KEY) == "failed" or row.get("reward") is None:
        failure = row.get(FAILURE_KEY) or {}
        kind = failure.get("kind") or "no reward"
        return None, f"{where}: rollout failed ({kind}): {failure.get('message') or ''}".strip()
    records, report = export([(where, row)], "trl", failed=FailedRowPolicy())
    if report.rejected:
        return None, report.rejected[0]
    return records[0], ""


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even under a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
