"""``RolloutCollectionHelper``: rollouts for a trainer, in NeMo Gym's calling convention.

``run_examples(rows, head_server_config)`` sends each row to the agent its ``agent_ref`` names
and returns an iterator of awaitables, each resolving to ``(row, result)`` as that rollout
finishes (first finished, first out), which is how NeMo RL's and verl's integrations consume it.
Each rollout is one :func:`~nemo_gym.rollouts.collect.run_one`, the call ``ng_collect_rollouts``
is built on, so both record the same row. A rollout that failed has no reward a trainer could
use: its awaitable raises :class:`RolloutError`, whose ``status`` (an HTTP status: 5xx for
infrastructure, 4xx for bad data) lets the trainer decide whether to retry, and whose ``row`` is
Gym's failed row. The server addresses come from the head server (``/global_config_dict_yaml``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator, Mapping
from typing import Any

from nemo_gym.rollouts.collect import run_one
from nemo_gym.rollouts.inputs import Task
from nemo_gym.rollouts.row import FAILURE_KEY, row_status
from nemo_gym.server.client import ServerClient, fetch_global_config, head_url
from nemo_gym.server.http_client import HttpClient

#: HTTP status a failed rollout is reported with, by failure kind (every ``FailedKind``).
STATUS_OF_FAILURE: dict[str, int] = {
    "invalid_input": 422,
    "timeout": 504,
    "model_error": 502,
    "tool_error": 502,
    "seed_error": 500,
    "verifier_error": 500,
    "agent_error": 500,
}
DEFAULT_ROLLOUT_TIMEOUT_S = 3600.0


class RolloutError(RuntimeError):
    """A rollout that ended without a reward; ``row`` is Gym's failed row."""

    def __init__(self, row: dict[str, Any]) -> None:
        failure = row.get(FAILURE_KEY) or {}
        self.kind = str(failure.get("kind") or "agent_error")
        self.row = row
        self.response_content = str(failure.get("message") or "")
        self.status = STATUS_OF_FAILURE.get(self.kind, 500)
        super().__init__(f"rollout failed ({self.kind}): {self.response_content}")


def _task(index: int, row: dict[str, Any]) -> Task:
    task = row.get("_ng_task_index", row.get("_rowidx", index))
    repeat = row.get("_ng_rollout_index", row.get("_ng_repeat_index", 0))
    return Task(int(task), int(repeat), row)


class RolloutCollectionHelper:
    """Run rows through their agents from a trainer (see the module docstring)."""

    def __init__(self, rollout_timeout_s: float = DEFAULT_ROLLOUT_TIMEOUT_S) -> None:
        self.rollout_timeout_s = rollout_timeout_s
        self._configs: dict[str, dict[str, Any]] = {}

    def setup_server_client(self, head_server_config: Any = None) -> ServerClient:
        """A client for the setup the head server at ``head_server_config`` describes.

        The setup's config is fetched once per head server; each client has its own pooled
        connections (sized by ``global_aiohttp_connector_limit[_per_host]``), to be closed.
        """
        head = _head_mapping(head_server_config)
        url = head_url({"head_server": head}) if head else head_url({})
        config = self._configs.get(url)
        if config is None:
            config = self._configs[url] = fetch_global_config(url)
        http = HttpClient(
            timeout_s=self.rollout_timeout_s,
            limit=int(config.get("global_aiohttp_connector_limit") or 65_536),
            limit_per_host=int(config.get("global_aiohttp_connector_limit_per_host") or 16_384),
        )
        return ServerClient(config, http=http)

    def run_examples(
        self,
        examples: list[dict[str, Any]],
        head_server_config: Any = None,
        semaphore: asyncio.Semaphore | None = None,
    ) -> Iterator[Awaitable[tuple[dict[str, Any], dict[str, Any]]]]:
        """One awaitable per row, yielded in the order rollouts finish; call inside a loop.

        Raises (from an awaitable):
            RolloutError: the rollout failed (``status``, ``row``).
        """
        client = self.setup_server_client(head_server_config)
        guard: contextlib.AbstractAsyncContextManager[Any] = semaphore or contextlib.nullcontext()
        pending = len(examples)

        async def finished() -> None:  # the last rollout closes the connections
            nonlocal pending
            pending -= 1
            if pending == 0:
                await client.close()

        async def one(index: int, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            try:
                agent = (row.get("agent_ref") or {}).get("name")
                if not agent:
                    raise ValueError(f"example {index} has no agent_ref.name to send it to")
                async with guard:
                    result, _ = await run_one(
                        client.http,
                        client.base_url(str(agent)) + "/run",
                        _task(index, row),
                        self.rollout_timeout_s,
                    )
            finally:
                await finished()
            if row_status(result) == "failed":
                raise RolloutError(result)
            return row, result

        return asyncio.as_completed([one(i, row) for i, row in enumerate(examples)])


def _head_mapping(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return {"host": config.get("host"), "port": config.get("port")}
    return {"host": getattr(config, "host", None), "port": getattr(config, "port", None)}
