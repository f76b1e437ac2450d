"""NeMo Gym compatibility: the resources-server base under its original module name."""

from nemo_gym.resources.schemas import (
    BaseRunRequest,
    BaseSeedSessionRequest,
    BaseSeedSessionResponse,
    BaseVerifyRequest,
    BaseVerifyResponse,
)
from nemo_gym.resources.server import BaseResourcesServerConfig, SimpleResourcesServer

__all__ = [
    "BaseResourcesServerConfig",
    "BaseRunRequest",
    "BaseSeedSessionRequest",
    "BaseSeedSessionResponse",
    "BaseVerifyRequest",
    "BaseVerifyResponse",
    "SimpleResourcesServer",
]
