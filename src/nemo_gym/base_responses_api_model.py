"""NeMo Gym compatibility: the model-server base under its original module name."""

from nemo_gym.model.server import (
    BaseResponsesAPIModelConfig,
    NeMoGymChatCompletion,
    NeMoGymChatCompletionCreateParamsNonStreaming,
    SimpleResponsesAPIModel,
)

__all__ = [
    "BaseResponsesAPIModelConfig",
    "NeMoGymChatCompletion",
    "NeMoGymChatCompletionCreateParamsNonStreaming",
    "SimpleResponsesAPIModel",
]
