"""NeMo Gym compatibility: the resources-server base under its original module name.

Neighbours: ``nemo_gym.resources`` (the implementation), ``nemo_gym.config_types``.
"""

from enum import StrEnum

from nemo_gym.config_types import AggregateMetrics, AggregateMetricsRequest
from nemo_gym.protocol.responses import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming
from nemo_gym.resources.schemas import (
    BaseRunRequest,
    BaseSeedSessionRequest,
    BaseSeedSessionResponse,
    BaseVerifyRequest,
    BaseVerifyResponse,
)
from nemo_gym.resources.server import BaseResourcesServerConfig, SimpleResourcesServer

__all__ = [
    "NEMO_GYM_MCP_METADATA_KEY",
    "AggregateMetrics",
    "AggregateMetricsRequest",
    "BaseMultiRewardVerifyResponse",
    "BaseResourcesServerConfig",
    "BaseRunRequest",
    "BaseSeedSessionRequest",
    "BaseSeedSessionResponse",
    "BaseVerifyRequest",
    "BaseVerifyResponse",
    "NeMoGymResponse",
    "NeMoGymResponseCreateParamsNonStreaming",
    "ReverifyMode",
    "SimpleResourcesServer",
]

#: The key of a ``/seed_session`` answer that describes the session's MCP endpoint.
NEMO_GYM_MCP_METADATA_KEY = "mcp"


class BaseMultiRewardVerifyResponse(BaseVerifyResponse):
    """A verify answer with several named rewards; ``reward`` is their scalar aggregate."""

    reward_components: dict[str, float]


class ReverifyMode(StrEnum):
    """Whether ``/verify`` can score a recorded rollout again without its session state."""

    STATELESS = "stateless"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"
