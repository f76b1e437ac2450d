"""``SimpleResponsesAPIModel``: the base of a model server.

Routes: ``POST /v1/responses`` and ``POST /v1/chat/completions``. Implementations are
stateless except for what they key on ``request.session`` (e.g. sticky upstream routing).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from fastapi import FastAPI
from starlette.responses import Response

from nemo_gym.protocol.chat import (
    NeMoGymChatCompletion,
    NeMoGymChatCompletionCreateParamsNonStreaming,
)
from nemo_gym.protocol.responses import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming
from nemo_gym.server.base import BaseServerConfig, SimpleServer
from nemo_gym.server.routing import add_post_route

__all__ = [
    "BaseResponsesAPIModelConfig",
    "NeMoGymChatCompletion",
    "NeMoGymChatCompletionCreateParamsNonStreaming",
    "SimpleResponsesAPIModel",
]


class BaseResponsesAPIModelConfig(BaseServerConfig):
    """Settings of a model server instance."""


class SimpleResponsesAPIModel(SimpleServer):
    """Subclass this and implement ``responses`` and ``chat_completions``."""

    server_type: ClassVar[str] = "responses_api_models"

    config: BaseResponsesAPIModelConfig

    def setup_webserver(self) -> FastAPI:
        """The app with ``/v1/responses`` and ``/v1/chat/completions``."""
        app = self.create_app()
        add_post_route(app, "/v1/responses", self.responses)
        add_post_route(app, "/v1/chat/completions", self.chat_completions)
        return app

    @abstractmethod
    async def responses(
        self, body: NeMoGymResponseCreateParamsNonStreaming
    ) -> NeMoGymResponse | Response:
        """Answer a Responses API request.

        FastAPI reads the override's signature: it may declare the body as here (NeMo Gym's
        model servers do, ``= Body()``), or take only the ``Request`` and answer a ``Response``
        (the fast path of ``add_post_route``; validate with ``validated_json``), as Gym's model
        servers do.
        """

    @abstractmethod
    async def chat_completions(
        self, body: NeMoGymChatCompletionCreateParamsNonStreaming
    ) -> NeMoGymChatCompletion | Response:
        """Answer a Chat Completions request; the override's signature may differ as for
        :meth:`responses`."""
