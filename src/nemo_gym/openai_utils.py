"""NeMo Gym compatibility: ``openai_utils``, the wire models and the OpenAI-compatible client.

The models live in ``nemo_gym.protocol`` (``items``, ``responses``, ``chat``, ``usage``) and are
re-exported here under NeMo Gym's names. :class:`NeMoGymAsyncOpenAI` is Gym's client for an
OpenAI-compatible endpoint (a judge model, a vLLM server): JSON in, parsed JSON out, rate
limits and gateway errors retried a bounded number of times.

Neighbours: ``nemo_gym.protocol``, ``nemo_gym.server.http_client`` (the pooled client).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from nemo_gym.protocol.chat import (
    NeMoGymChatCompletion,
    NeMoGymChatCompletionAssistantMessageForTrainingParam,
    NeMoGymChatCompletionAssistantMessageParam,
    NeMoGymChatCompletionContentPartTextParam,
    NeMoGymChatCompletionCreateParamsNonStreaming,
    NeMoGymChatCompletionDeveloperMessageParam,
    NeMoGymChatCompletionMessage,
    NeMoGymChatCompletionMessageForTraining,
    NeMoGymChatCompletionMessageParam,
    NeMoGymChatCompletionMessageToolCall,
    NeMoGymChatCompletionMessageToolCallFunctionParam,
    NeMoGymChatCompletionMessageToolCallParam,
    NeMoGymChatCompletionSystemMessageParam,
    NeMoGymChatCompletionToolMessageParam,
    NeMoGymChatCompletionToolParam,
    NeMoGymChatCompletionUserMessageParam,
    NeMoGymChoice,
    NeMoGymFunction,
    NeMoGymFunctionDefinition,
    NeMoGymFunctionToolParam,
    TokenIdTypedDictFields,
)
from nemo_gym.protocol.items import (
    RESPONSES_TO_TRAIN,
    NeMoGymContent,
    NeMoGymEasyInputMessage,
    NeMoGymEasyInputMessageForTraining,
    NeMoGymFunctionCallOutput,
    NeMoGymMessage,
    NeMoGymMessageForTraining,
    NeMoGymResponseFunctionToolCall,
    NeMoGymResponseFunctionToolCallForTraining,
    NeMoGymResponseInputText,
    NeMoGymResponseOutputMessage,
    NeMoGymResponseOutputMessageForTraining,
    NeMoGymResponseOutputRefusal,
    NeMoGymResponseOutputText,
    NeMoGymResponseReasoningItem,
    NeMoGymResponseReasoningItemForTraining,
    NeMoGymSummary,
    TokenIdFields,
)
from nemo_gym.protocol.responses import (
    NeMoGymInputItem,
    NeMoGymOutputItem,
    NeMoGymResponse,
    NeMoGymResponseCreateParamsNonStreaming,
)
from nemo_gym.protocol.usage import (
    NeMoGymResponseInputTokensDetails,
    NeMoGymResponseOutputTokensDetails,
    NeMoGymResponseUsage,
    accumulate_response_usage,
)
from nemo_gym.server.http_client import HttpClient, RetryPolicy
from nemo_gym.server_utils import get_response_json, raise_for_status

__all__ = [
    "RATE_LIMIT_ERROR_CODES",
    "REQUIRED_TOKEN_METADATA_FIELDS",
    "RESPONSES_TO_TRAIN",
    "RETRY_ERROR_CODES",
    "TOKEN_METADATA_FIELDS",
    "NeMoGymAsyncOpenAI",
    "NeMoGymChatCompletion",
    "NeMoGymChatCompletionAssistantMessageForTrainingParam",
    "NeMoGymChatCompletionAssistantMessageParam",
    "NeMoGymChatCompletionContentPartTextParam",
    "NeMoGymChatCompletionCreateParamsNonStreaming",
    "NeMoGymChatCompletionDeveloperMessageParam",
    "NeMoGymChatCompletionMessage",
    "NeMoGymChatCompletionMessageForTraining",
    "NeMoGymChatCompletionMessageParam",
    "NeMoGymChatCompletionMessageToolCall",
    "NeMoGymChatCompletionMessageToolCallFunctionParam",
    "NeMoGymChatCompletionMessageToolCallParam",
    "NeMoGymChatCompletionSystemMessageParam",
    "NeMoGymChatCompletionToolMessageParam",
    "NeMoGymChatCompletionToolParam",
    "NeMoGymChatCompletionUserMessageParam",
    "NeMoGymChoice",
    "NeMoGymContent",
    "NeMoGymEasyInputMessage",
    "NeMoGymEasyInputMessageForTraining",
    "NeMoGymFunction",
    "NeMoGymFunctionCallOutput",
    "NeMoGymFunctionDefinition",
    "NeMoGymFunctionToolParam",
    "NeMoGymMessage",
    "NeMoGymMessageForTraining",
    "NeMoGymResponse",
    "NeMoGymResponseCreateParamsNonStreaming",
    "NeMoGymResponseFunctionToolCall",
    "NeMoGymResponseFunctionToolCallForTraining",
    "NeMoGymResponseInput",
    "NeMoGymResponseInputItem",
    "NeMoGymResponseInputText",
    "NeMoGymResponseInputTokensDetails",
    "NeMoGymResponseOutputItem",
    "NeMoGymResponseOutputMessage",
    "NeMoGymResponseOutputMessageForTraining",
    "NeMoGymResponseOutputRefusal",
    "NeMoGymResponseOutputText",
    "NeMoGymResponseOutputTokensDetails",
    "NeMoGymResponseReasoningItem",
    "NeMoGymResponseReasoningItemForTraining",
    "NeMoGymResponseUsage",
    "NeMoGymSummary",
    "TokenIDLogProbMixin",
    "TokenIDLogProbTypedDictMixin",
    "accumulate_response_usage",
]

TokenIDLogProbMixin = TokenIdFields
TokenIDLogProbTypedDictMixin = TokenIdTypedDictFields
NeMoGymResponseInputItem = NeMoGymInputItem
NeMoGymResponseInput = list[NeMoGymInputItem]
NeMoGymResponseOutputItem = NeMoGymOutputItem

#: Token-data fields a training-mode model server attaches (all three or none).
REQUIRED_TOKEN_METADATA_FIELDS = frozenset(
    {"prompt_token_ids", "generation_token_ids", "generation_log_probs"}
)
TOKEN_METADATA_FIELDS = REQUIRED_TOKEN_METADATA_FIELDS | {"routed_experts"}

#: Statuses of an overloaded or rate-limiting endpoint (retried without using up attempts in
#: NeMo Gym; retried within Gym's bounded policy here).
RATE_LIMIT_ERROR_CODES = [429, 502, 503, 504, 520]
RETRY_ERROR_CODES = [*RATE_LIMIT_ERROR_CODES, 500]


class NeMoGymAsyncOpenAI(BaseModel):
    """A small async client for an OpenAI-compatible endpoint.

    Each ``create_*`` method posts its keyword arguments as the JSON body and returns the
    parsed JSON answer. Statuses in :data:`RETRY_ERROR_CODES` and failed connections are
    retried (at most ``max_attempts`` attempts, backing off, honouring ``Retry-After``); any
    other non-2xx answer raises :class:`nemo_gym.server_utils.HTTPStatusError` with the body.
    Call :meth:`close` when done (the connection pool is created on first use).

    Args:
        base_url: the endpoint's base URL, e.g. ``http://host:8000/v1``.
        api_key: sent as ``Authorization: Bearer <api_key>``; never printed.
        internal: the endpoint is one of this setup's own servers (kept for NeMo Gym's
            signature; the retry rules are the same).
    """

    base_url: str
    api_key: str = Field(repr=False)
    internal: bool = False
    timeout_s: float = 900.0
    max_attempts: int = 6

    _http: HttpClient | None = PrivateAttr(default=None)

    def _client(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(timeout_s=self.timeout_s)
        return self._http

    async def _call(self, method: str, url: str, json: Any = None) -> Any:
        retry = RetryPolicy(
            max_attempts=self.max_attempts, retry_statuses=frozenset(RETRY_ERROR_CODES)
        )
        response = await self._client().request(
            method,
            url,
            json=json,
            headers={"Authorization": f"Bearer {self.api_key}"},
            retry=retry,
        )
        await raise_for_status(response)
        return await get_response_json(response)

    async def create_chat_completion(self, **kwargs: Any) -> Any:
        """``POST {base_url}/chat/completions``."""
        return await self._call("POST", f"{self.base_url}/chat/completions", kwargs)

    async def create_response(self, **kwargs: Any) -> Any:
        """``POST {base_url}/responses``."""
        return await self._call("POST", f"{self.base_url}/responses", kwargs)

    async def create_models(self) -> Any:
        """``GET {base_url}/models``."""
        return await self._call("GET", f"{self.base_url}/models")

    async def create_tokenize(self, **kwargs: Any) -> Any:
        """``POST /tokenize`` at the server root (vLLM's tokenizer route)."""
        return await self._call("POST", f"{self.base_url.removesuffix('/v1')}/tokenize", kwargs)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.close()
            self._http = None
