"""Which agent runs each row, how many times, and with which seed: NeMo Gym's collection rules.

* A row's own ``agent_ref`` names its agent; ``+agent_name`` names it for rows that have none
  (NeMo Gym's rule: the row's wins). A row with neither is an error naming it.
* ``+num_repeats`` is a number, or a mapping from agent name to a number with ``_default`` for
  the others; an agent it does not cover is an error.
* ``+num_repeats_add_seed=true`` gives each repeat its own seed (its ``_ng_rollout_index``), in
  ``responses_create_params.metadata.extra_body`` as NeMo Gym passes it; model servers merge
  ``extra_body`` into the request they send (``protocol.chat_conversion``).
Used by ``cli/collect.py``; rows come from ``inputs.read_rows``, tasks go to ``collect``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nemo_gym.core.errors import ConfigError
from nemo_gym.rollouts.inputs import Task

AGENT_TYPE = "responses_api_agents"
DEFAULT_KEY = "_default"


def route_rows(
    rows: list[dict[str, Any]], agent_name: str | None, source: str = "the input"
) -> list[str]:
    """The agent of each row (setting ``agent_ref`` where only ``+agent_name`` gave it).

    Raises:
        ConfigError: rows of ``source`` with no agent (numbered from 1, blank lines skipped).
    """
    agents: list[str] = []
    missing: list[int] = []
    for number, row in enumerate(rows, start=1):
        ref = row.get("agent_ref")
        name = ref.get("name") if isinstance(ref, Mapping) else None
        if not name and agent_name:
            name = agent_name
            row["agent_ref"] = {"type": AGENT_TYPE, "name": agent_name}
        if not name:
            missing.append(number)
        agents.append(str(name or ""))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ConfigError(
            f"{source}: rows {shown} name no agent (agent_ref); give +agent_name=... or an "
            "agent_ref in each row",
            source="command line",
            key="+agent_name",
        )
    return agents


def repeats_for(agents: list[str], num_repeats: int | Mapping[str, int] | None) -> list[int]:
    """Repeats of each row, by its agent.

    Raises:
        ConfigError: a mapping that does not cover an agent (and has no ``_default``).
    """
    if num_repeats is None:
        return [1] * len(agents)
    if isinstance(num_repeats, int):
        return [num_repeats] * len(agents)
    uncovered = sorted({a for a in agents if a not in num_repeats} - set())
    if uncovered and DEFAULT_KEY not in num_repeats:
        raise ConfigError(
            f"num_repeats has no entry for agents {uncovered} and no '_default'",
            source="command line",
            key="+num_repeats",
        )
    unused = sorted(set(num_repeats) - set(agents) - {DEFAULT_KEY})
    if unused:
        raise ConfigError(
            f"num_repeats names agents that no row uses: {unused} (a typo?)",
            source="command line",
            key="+num_repeats",
        )
    return [int(num_repeats.get(a, num_repeats.get(DEFAULT_KEY, 1))) for a in agents]


def add_seed(task: Task) -> None:
    """Give the task's request the seed of its repeat (NeMo Gym's ``num_repeats_add_seed``)."""
    params = task.row["responses_create_params"] = dict(task.row["responses_create_params"])
    metadata = dict(params.get("metadata") or {})
    extra = json.loads(metadata.get("extra_body") or "{}")
    extra["seed"] = task.repeat_index
    metadata["extra_body"] = json.dumps(extra)
    params["metadata"] = metadata
