"""NeMo Gym compatibility: ``config_types``, the config and wire types environments import.

* ``ModelServerRef`` / ``ResourcesServerRef`` / ``AgentServerRef``: a reference from one
  instance's config to another (``{type, name}``); each accepts only its own server type, so a
  model server named where a resources server is expected is an error naming the field.
* ``BaseServerConfig``: where a server listens (``host``, ``port``); every server's settings
  extend it. Trainers pass one for the head server.
* ``AggregateMetricsRequest`` / ``AggregateMetrics``: the body and answer of
  ``/aggregate_metrics`` (verify responses in; per-task, per-agent and key metrics out).

Neighbours: ``nemo_gym.config`` (loading and validating configs), ``nemo_gym.server.base``.
"""

from __future__ import annotations

from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, Field

from nemo_gym.config.instances import DatasetConfig, Domain, ServerRef
from nemo_gym.server.base import BaseRunServerInstanceConfig, BaseServerConfig

__all__ = [
    "AgentServerRef",
    "AggregateMetrics",
    "AggregateMetricsRequest",
    "BaseRunServerInstanceConfig",
    "BaseServerConfig",
    "DatasetConfig",
    "DictConfig",
    "Domain",
    "ModelServerRef",
    "OmegaConf",
    "ResourcesServerRef",
    "ServerRef",
]


class ModelServerRef(ServerRef):
    """A reference to a model server instance."""

    type: Literal["responses_api_models"]


class ResourcesServerRef(ServerRef):
    """A reference to a resources server instance."""

    type: Literal["resources_servers"]


class AgentServerRef(ServerRef):
    """A reference to an agent instance."""

    type: Literal["responses_api_agents"]


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
