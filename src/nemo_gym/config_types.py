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

from typing import Literal

from omegaconf import DictConfig, OmegaConf

from nemo_gym.config.instances import DatasetConfig, Domain, ServerRef
from nemo_gym.rollouts.aggregate import AggregateMetrics, AggregateMetricsRequest
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
