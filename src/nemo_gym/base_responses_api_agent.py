"""NeMo Gym compatibility: the agent base under its original module name."""

from nemo_gym.agent.server import (
    AgentServerRef,
    BaseResponsesAPIAgentConfig,
    ModelServerRef,
    ResourcesServerRef,
    SimpleResponsesAPIAgent,
)
from nemo_gym.resources.schemas import BaseRunRequest, BaseVerifyRequest, BaseVerifyResponse

__all__ = [
    "AgentServerRef",
    "BaseResponsesAPIAgentConfig",
    "BaseRunRequest",
    "BaseVerifyRequest",
    "BaseVerifyResponse",
    "ModelServerRef",
    "ResourcesServerRef",
    "SimpleResponsesAPIAgent",
]
