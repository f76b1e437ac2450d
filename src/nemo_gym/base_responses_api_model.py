"""NeMo Gym compatibility: the model-server base under its original module name.

``Body`` is FastAPI's, as NeMo Gym's model servers declare their request bodies with it.

Neighbours: ``nemo_gym.model`` (the implementation), ``nemo_gym.protocol``.
"""

from fastapi import Body

from nemo_gym.model.server import BaseResponsesAPIModelConfig, SimpleResponsesAPIModel
from nemo_gym.protocol.chat import (
    NeMoGymChatCompletion,
    NeMoGymChatCompletionCreateParamsNonStreaming,
)
from nemo_gym.protocol.responses import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming

__all__ = [
    "BaseResponsesAPIModelConfig",
    "Body",
    "NeMoGymChatCompletion",
    "NeMoGymChatCompletionCreateParamsNonStreaming",
    "NeMoGymResponse",
    "NeMoGymResponseCreateParamsNonStreaming",
    "SimpleResponsesAPIModel",
]
