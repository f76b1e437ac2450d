"""The collector's last step: each agent's ``/aggregate_metrics``, written and printed.

After ``ng_collect_rollouts`` has run every rollout, :func:`report_metrics` sends each agent the
verify responses of its scored rows (``RunSummary.verify_responses``: failed rows are never
sent, so never averaged in as 0), writes ``<output stem>_aggregate_metrics.json`` — NeMo Gym's
file: a list of ``{agent_ref, agent_metrics, key_metrics, group_level_metrics}``, one per agent,
plus Gym's ``num_scored`` / ``num_failed`` counts — and returns a :class:`MetricsReport` whose
text (each agent's key metrics, the run's pass@k and majority@k from
``RunSummary.pass_majority``) the command prints.

An agent that cannot answer is named with the reason, and the others are still written.

Neighbours: ``summary`` (the rows), ``aggregate`` (what the servers compute),
``nemo_gym.cli.collect`` (calls this once collection is over).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from nemo_gym.core.errors import ConfigError, UpstreamError
from nemo_gym.rollouts.aggregate import AggregateMetrics
from nemo_gym.rollouts.summary import RunSummary
from nemo_gym.server.client import ServerClient
from nemo_gym.server.http_client import HttpClient

logger = logging.getLogger(__name__)

AGENT_REF_KEY = "agent_ref"
TIMEOUT_S = 600.0


def metrics_path(output: Path) -> Path:
    """``<output stem>_aggregate_metrics.json`` beside the output."""
    return output.with_name(f"{output.stem}_aggregate_metrics.json")


def agent_of(row: Mapping[str, Any], default_agent: str | None) -> str | None:
    """The agent a row was run by: its ``agent_ref`` (as the collector routes rows), else
    ``default_agent`` (``+agent_name``)."""
    ref = row.get(AGENT_REF_KEY)
    name = ref.get("name") if isinstance(ref, Mapping) else None
    if isinstance(name, str) and name:
        return name
    return default_agent or None


def by_agent(
    verify_responses: list[dict[str, Any]], default_agent: str | None
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Scored rows per agent, each agent's sorted by (task, rollout); and how many name none."""
    groups: dict[str, list[dict[str, Any]]] = {}
    unnamed = 0
    for row in verify_responses:
        agent = agent_of(row, default_agent)
        if agent is None:
            unnamed += 1
        else:
            groups.setdefault(agent, []).append(row)
    for rows in groups.values():
        rows.sort(key=lambda r: (r.get("_ng_task_index") or 0, r.get("_ng_rollout_index") or 0))
    return groups, unnamed


async def fetch_metrics(
    client: ServerClient, agent: str, rows: list[dict[str, Any]]
) -> AggregateMetrics:
    """One agent's answer to ``/aggregate_metrics``.

    Raises:
        RuntimeError: the agent could not be reached, answered an error, or answered
            something that is not an ``AggregateMetrics`` (the message names the agent).
    """
    try:
        resp = await client.post(
            agent, "/aggregate_metrics", json={"verify_responses": rows}, timeout_s=TIMEOUT_S
        )
    except (UpstreamError, ConfigError) as exc:
        raise RuntimeError(f"agent {agent!r}: {exc}") from None
    if not resp.ok:
        text = resp.body[:1000].decode(errors="replace")
        raise RuntimeError(f"agent {agent!r} answered HTTP {resp.status}: {text}")
    try:
        return AggregateMetrics.model_validate(resp.json_sync())
    except (ValueError, ValidationError) as exc:
        raise RuntimeError(f"agent {agent!r} answered invalid aggregate metrics: {exc}") from None


async def collect_metrics(
    client: ServerClient,
    groups: dict[str, list[dict[str, Any]]],
    failed: Mapping[str, int],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every agent's file entry (in agent-name order), and the errors of those that failed."""
    names = sorted(groups)
    answers = await asyncio.gather(
        *(fetch_metrics(client, name, groups[name]) for name in names), return_exceptions=True
    )
    entries: list[dict[str, Any]] = []
    errors: list[str] = []
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, BaseException):
            if not isinstance(answer, RuntimeError):
                raise answer
            errors.append(str(answer))
            continue
        entries.append(
            {
                AGENT_REF_KEY: {"name": name},
                "agent_metrics": answer.agent_metrics,
                "key_metrics": answer.key_metrics,
                "group_level_metrics": answer.group_level_metrics,
                "num_scored": len(groups[name]),
                "num_failed": failed.get(name, 0),
            }
        )
    return entries, errors


@dataclass
class MetricsReport:
    """What :func:`report_metrics` found: the run's pass@k / majority@k and the file written."""

    tasks: int
    pass_majority: dict[str, float]
    entries: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None

    def text(self) -> str:
        """The lines ``ng_collect_rollouts`` prints."""
        lines = []
        if self.pass_majority:
            rounded = {k: round(v, 4) for k, v in self.pass_majority.items()}
            lines.append(
                f"pass@k and majority@k (%, over {self.tasks} tasks, scored rollouts only):"
            )
            lines.append(json.dumps(rounded, indent=4))
        for entry in self.entries:
            lines.append(f"Key metrics for {entry[AGENT_REF_KEY]['name']}:")
            lines.append(json.dumps(entry["key_metrics"], indent=4))
        if self.path is not None:
            lines.append(f"Aggregate metrics: {self.path}")
        return "\n".join(lines)


def report_metrics(
    client: ServerClient, summary: RunSummary, output: Path, default_agent: str | None = None
) -> MetricsReport:
    """Compute pass@k / majority@k, fetch every agent's metrics and write the metrics file.

    Agents that cannot answer are logged as errors (naming agent and reason); the others are
    written. No file is written when no row was scored.

    Args:
        client: a client of the running servers (its config is reused; calls use a new pool).
        summary: the run's summary (its scored rows and failed counts).
        output: the rollouts file; the metrics file goes beside it.
        default_agent: the agent of rows without an ``agent_ref`` (``+agent_name``).
    """
    report = MetricsReport(*summary.pass_majority())
    groups, unnamed = by_agent(summary.verify_responses, default_agent)
    if unnamed:
        logger.warning("%d scored rows name no agent_ref and are left out of the metrics", unnamed)
    if not groups:
        return report
    failed: dict[str, int] = {}
    for name, count in summary.failed_by_agent.items():
        agent = name or default_agent
        if agent:
            failed[agent] = failed.get(agent, 0) + count

    async def run() -> tuple[list[dict[str, Any]], list[str]]:
        own = ServerClient(client.global_config_dict, HttpClient(timeout_s=TIMEOUT_S))
        try:
            return await collect_metrics(own, groups, failed)
        finally:
            await own.close()

    report.entries, errors = asyncio.run(run())
    for error in errors:
        logger.error("no aggregate metrics from %s", error)
    report.path = metrics_path(output)
    report.path.write_bytes(
        orjson.dumps(report.entries, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        + b"\n"
    )
    return report
