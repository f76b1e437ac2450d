"""NeMo Gym compatibility: the agent base under its original module name.

``Body`` is FastAPI's, as NeMo Gym's agents declare their request bodies with it
(``body: NeMoGymResponseCreateParamsNonStreaming = Body()``).

Neighbours: ``nemo_gym.agent`` (the implementation), ``nemo_gym.config_types``.
"""

from fastapi import Body

from nemo_gym.agent.server import BaseResponsesAPIAgentConfig, SimpleResponsesAPIAgent
from nemo_gym.config_types import (
    AgentServerRef,
    AggregateMetricsRequest,
    ModelServerRef,
    ResourcesServerRef,
)
from nemo_gym.resources.schemas import BaseRunRequest, BaseVerifyRequest, BaseVerifyResponse

__all__ = [
    "AgentServerRef",
    "AggregateMetricsRequest",
    "BaseResponsesAPIAgentConfig",
    "BaseRunRequest",
    "BaseVerifyRequest",
    "BaseVerifyResponse",
    "Body",
    "ModelServerRef",
    "ResourcesServerRef",
    "SimpleResponsesAPIAgent",
]
