"""What ``/aggregate_metrics`` answers: baseline statistics plus an environment's own metrics.

A server's ``/aggregate_metrics`` (agents and resources servers alike, see
:class:`MetricsHooks`) receives the verify responses of one agent's scored rollouts and answers
an :class:`AggregateMetrics` (re-exported by ``nemo_gym.config_types``), NeMo Gym's contract:

* ``agent_metrics``: ``mean/<field>``, ``max/<field>``, ``min/<field>``, ``median/<field>`` and
  ``std/<field>`` (sample standard deviation; 0 for one value) of every numeric field over the
  rollouts that have it: top-level numbers (booleans as 0/1; Gym's ``_ng_`` bookkeeping
  excluded), the ``response.usage`` counts, and each part of ``reward_components`` as
  ``reward_components/<name>``; then whatever ``compute_metrics(tasks)`` returns, merged in.
* ``group_level_metrics``: the same statistics per task (``_ng_task_index``, with
  ``num_rollouts``), plus the entries of the ``per_task_metrics`` list ``compute_metrics`` may
  return (each naming its ``_ng_task_index``).
* ``key_metrics``: ``get_key_metrics(agent_metrics)``; by default every ``mean/`` entry.

``compute_metrics`` receives ``tasks[i]``, the verify responses of the i-th task (in order of
task index, each task's rollouts in the order given), and typically calls
``nemo_gym.reward_profile.compute_pass_majority_metrics``. Failed rollouts are never sent (the
collector, ``nemo_gym.rollouts.metrics``, sends scored rows only), so nothing counts as 0.

Neighbours: ``nemo_gym.resources.server`` and ``nemo_gym.agent.server`` (the routes),
``nemo_gym.rollouts.metrics`` (the collector's call and the file it writes).
"""

from __future__ import annotations

import functools
import inspect
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from nemo_gym.core.memory import release_free_heap
from nemo_gym.server.bodies import json_body

TASK_INDEX_KEY = "_ng_task_index"
PER_TASK_KEY = "per_task_metrics"
STATS = ("mean", "max", "min", "median", "std")

Tasks = list[list[dict[str, Any]]]
ComputeMetrics = Callable[[Tasks], Any]
GetKeyMetrics = Callable[[dict[str, Any]], Any]


class AggregateMetricsRequest(BaseModel):
    """The body of ``/aggregate_metrics``: verify responses (``reward``, ``_ng_task_index``,
    and whatever fields the verifier added), one dict per rollout."""

    verify_responses: list[dict[str, Any]]


class AggregateMetrics(BaseModel):
    """What ``/aggregate_metrics`` answers (flat string keys, ready for a metrics logger)."""

    group_level_metrics: list[dict[str, Any]] = Field(
        default_factory=list, description="One dict of metrics per task."
    )
    agent_metrics: dict[str, Any] = Field(
        default_factory=dict, description="Metrics over all rollouts."
    )
    key_metrics: dict[str, Any] = Field(
        default_factory=dict, description="The headline subset of ``agent_metrics``."
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def numeric_fields(row: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of one verify response that the baseline statistics cover."""
    out: dict[str, float] = {}
    for key, value in row.items():
        number = _number(value)
        if number is not None and not key.startswith("_ng_"):
            out[key] = number
    response = row.get("response")
    usage = response.get("usage") if isinstance(response, Mapping) else None
    if isinstance(usage, Mapping):
        for key, value in usage.items():
            number = _number(value)
            if number is not None:
                out[str(key)] = number
    components = row.get("reward_components")
    if isinstance(components, Mapping):
        for name, value in components.items():
            number = _number(value)
            if number is not None:
                out[f"reward_components/{name}"] = number
    return out


def _stat_key(stat: str, field: str, names: dict[tuple[str, str], str]) -> str:
    """``<stat>/<field>``, one string object per name for all tasks (16,384 tasks made as many
    copies of each of some twenty names)."""
    key = names.get((stat, field))
    if key is None:
        key = names[(stat, field)] = f"{stat}/{field}"
    return key


def describe(
    rows: Sequence[Mapping[str, Any]], names: dict[tuple[str, str], str] | None = None
) -> dict[str, float]:
    """``<stat>/<field>`` for every numeric field of ``rows`` (each over the rows that have it);
    ``names`` shares the key strings between calls."""
    names = {} if names is None else names
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in numeric_fields(row).items():
            columns.setdefault(key, []).append(value)
    out: dict[str, float] = {}
    for stat in STATS:
        for key in sorted(columns):
            values = columns[key]
            name = _stat_key(stat, key, names)
            if stat == "mean":
                out[name] = math.fsum(values) / len(values)
            elif stat == "max":
                out[name] = max(values)
            elif stat == "min":
                out[name] = min(values)
            elif stat == "median":
                out[name] = statistics.median(values)
            else:
                out[name] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def group_by_task(rows: list[dict[str, Any]]) -> tuple[list[int], Tasks]:
    """The task indices in order, and each task's rows in the order given (missing index: 0)."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(int(row.get(TASK_INDEX_KEY) or 0), []).append(row)
    order = sorted(groups)
    return order, [groups[i] for i in order]


async def _call(hook: Callable[[Any], Any], arg: Any, name: str) -> dict[str, Any]:
    result = hook(arg)
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, dict):
        raise TypeError(f"{name} must return a dict, not {type(result).__name__}")
    return result


async def aggregate_metrics(
    verify_responses: list[dict[str, Any]],
    compute_metrics: ComputeMetrics | None = None,
    get_key_metrics: GetKeyMetrics | None = None,
) -> AggregateMetrics:
    """The baseline statistics, with ``compute_metrics`` merged in and ``get_key_metrics``
    choosing the headline (see module docstring); an empty answer for no rollouts.

    Raises:
        TypeError: a hook returned something other than a dict, or ``per_task_metrics`` is not
            a list of dicts each naming its ``_ng_task_index``.
    """
    if not verify_responses:
        return AggregateMetrics()
    order, tasks = group_by_task(verify_responses)
    names: dict[tuple[str, str], str] = {}
    groups: list[dict[str, Any]] = [
        {TASK_INDEX_KEY: index, **describe(rows, names), "num_rollouts": len(rows)}
        for index, rows in zip(order, tasks, strict=True)
    ]
    agent_metrics: dict[str, Any] = describe(verify_responses, names)
    if compute_metrics is not None:
        custom = dict(await _call(compute_metrics, tasks, "compute_metrics"))
        per_task = custom.pop(PER_TASK_KEY, None)
        if per_task is not None:
            _merge_per_task(groups, per_task)
        agent_metrics.update(custom)
    if get_key_metrics is not None:
        key_metrics = await _call(get_key_metrics, agent_metrics, "get_key_metrics")
    else:
        key_metrics = {k: v for k, v in agent_metrics.items() if k.startswith("mean/")}
    # Built, not validated: every part is a dict made here or checked by _call (validation
    # would copy 16,384 per-task dicts to answer them).
    return AggregateMetrics.model_construct(
        group_level_metrics=groups, agent_metrics=agent_metrics, key_metrics=key_metrics
    )


def _merge_per_task(groups: list[dict[str, Any]], per_task: Any) -> None:
    by_index = {group[TASK_INDEX_KEY]: group for group in groups}
    if not isinstance(per_task, list):
        raise TypeError(f"compute_metrics: {PER_TASK_KEY} must be a list of dicts")
    for i, entry in enumerate(per_task):
        if not isinstance(entry, dict) or TASK_INDEX_KEY not in entry:
            raise TypeError(
                f"compute_metrics: {PER_TASK_KEY}[{i}] must be a dict with {TASK_INDEX_KEY!r}"
            )
        group = by_index.get(entry[TASK_INDEX_KEY])
        if group is not None:
            group.update({k: v for k, v in entry.items() if k != TASK_INDEX_KEY})


async def read_aggregate_request(request: Request) -> AggregateMetricsRequest:
    """The ``/aggregate_metrics`` body, parsed in bounded memory and checked by shape (an
    object whose ``verify_responses`` is a list of objects) instead of validated: validation
    copies every one of the 32,768 dicts a large run sends.

    Raises:
        RequestValidationError: not JSON, or not that shape (answered as 422 naming where).
    """
    data = await json_body(request)
    rows = data.get("verify_responses") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise RequestValidationError(
            [{"loc": ("body", "verify_responses"), "msg": "must be a list", "type": "list_type"}]
        )
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "verify_responses", i),
                        "msg": "must be an object",
                        "type": "dict_type",
                    }
                ]
            )
    return AggregateMetricsRequest.model_construct(verify_responses=rows)


class MetricsHooks:
    """``compute_metrics`` / ``get_key_metrics`` and the ``/aggregate_metrics`` endpoint, on the
    agent and resources-server bases. Override the hooks (plain or ``async`` methods)."""

    def aggregate_route(self) -> Callable[..., Any]:
        """What the bases mount at ``/aggregate_metrics``: :meth:`aggregate_metrics_endpoint`,
        unless an override of :meth:`aggregate_metrics` takes more than its body (FastAPI then
        reads that signature, as for NeMo Gym's servers)."""
        params = list(inspect.signature(self.aggregate_metrics).parameters.values())
        endpoint: Callable[..., Any] = self.aggregate_metrics
        if len(params) == 1 and params[0].annotation not in (Request, "Request"):
            endpoint = self.aggregate_metrics_endpoint

        @functools.wraps(endpoint)  # FastAPI and add_post_route read the endpoint's signature
        async def route(*args: Any, **kwargs: Any) -> Any:
            # A run has just ended: the memory its rollouts used goes back to the system
            # before a large body is parsed (core.memory).
            release_free_heap()
            return await endpoint(*args, **kwargs)

        return route

    async def aggregate_metrics_endpoint(self, request: Request) -> Any:
        """The route: the body read by :func:`read_aggregate_request`, answered by
        :meth:`aggregate_metrics`."""
        return await self.aggregate_metrics(await read_aggregate_request(request))

    def compute_metrics(self, tasks: Tasks) -> dict[str, Any]:
        """Metrics over every scored rollout, ``tasks[i]`` being task i's verify responses;
        merged into ``agent_metrics`` (a ``per_task_metrics`` list goes to the tasks)."""
        return {}

    def get_key_metrics(self, agent_metrics: dict[str, Any]) -> dict[str, Any]:
        """The headline subset of ``agent_metrics``; by default every ``mean/`` entry."""
        return {k: v for k, v in agent_metrics.items() if k.startswith("mean/")}

    async def aggregate_metrics(self, body: AggregateMetricsRequest) -> AggregateMetrics:
        """Answer ``/aggregate_metrics`` from this server's hooks."""
        return await aggregate_metrics(
            body.verify_responses, self.compute_metrics, self.get_key_metrics
        )
