"""Chat Completions wire models under NeMo Gym's names: the answer, its parts, and the params.

* :class:`NeMoGymChatCompletion` is OpenAI's ``ChatCompletion`` whose choices carry a message
  with function tool calls only, or its training variant (the message carries token data) when
  the message has ``generation_token_ids``.
* :class:`NeMoGymChatCompletionCreateParamsNonStreaming` is a ``/v1/chat/completions`` body:
  every documented parameter is a field defaulting to ``None`` (so ``body.temperature`` reads
  as on NeMo Gym), and unknown keys are passed through to the upstream engine (vLLM's
  ``chat_template_kwargs``, token-id fields). Messages are kept as the dicts they came as, so
  fields an engine understands and OpenAI's types do not (``reasoning_content``, token ids)
  survive validation.
* The ``...Param`` typed dicts are what environments build requests from: OpenAI's, with content
  as a plain list (not an iterable) and function tool calls only.

Neighbours: ``chat_conversion`` turns these into Responses items and back; model servers
validate their chat route with the params model; ``nemo_gym.openai_utils`` re-exports all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Required, TypedDict

from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionDeveloperMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_assistant_message_param import ContentArrayOfContentPart
from openai.types.chat.chat_completion_message_function_tool_call import Function
from openai.types.responses import FunctionToolParam
from openai.types.shared_params import FunctionDefinition
from pydantic import BaseModel, ConfigDict, Discriminator, Tag

from nemo_gym.protocol.items import TokenIdFields

__all__ = [
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
    "NeMoGymFunction",
    "NeMoGymFunctionDefinition",
    "NeMoGymFunctionToolParam",
    "TokenIdTypedDictFields",
]

# ---- the answer -------------------------------------------------------------------------


class NeMoGymFunction(Function):
    """The function a tool call names, with its JSON arguments."""


class NeMoGymChatCompletionMessageToolCall(ChatCompletionMessageFunctionToolCall):
    """A function tool call of an assistant message."""

    function: NeMoGymFunction


class NeMoGymChatCompletionMessage(ChatCompletionMessage):
    """An assistant message whose tool calls are function calls."""

    tool_calls: list[NeMoGymChatCompletionMessageToolCall] | None = None  # type: ignore[assignment]


class NeMoGymChatCompletionMessageForTraining(NeMoGymChatCompletionMessage, TokenIdFields):
    """An assistant message with the tokens that produced it."""


def _message_tag(message: Any) -> str:
    if isinstance(message, dict):
        tokens = message.get("generation_token_ids")
    else:
        tokens = getattr(message, "generation_token_ids", None)
    return "plain" if tokens is None else "train"


class NeMoGymChoice(Choice):
    """One choice of a chat completion."""

    message: Annotated[
        Annotated[NeMoGymChatCompletionMessage, Tag("plain")]
        | Annotated[NeMoGymChatCompletionMessageForTraining, Tag("train")],
        Discriminator(_message_tag),
    ]


class NeMoGymChatCompletion(ChatCompletion):
    """A Chat Completions answer (OpenAI's type; unknown fields are kept)."""

    choices: list[NeMoGymChoice]  # type: ignore[assignment]


# ---- request params (typed dicts) -------------------------------------------------------


class TokenIdTypedDictFields(TypedDict):
    """Token data on a message given back to a training-mode engine."""

    prompt_token_ids: list[int]
    generation_token_ids: list[int]
    generation_log_probs: list[float]


class NeMoGymFunctionDefinition(FunctionDefinition):
    """A function a tool offers: name, description, JSON-schema parameters."""


class NeMoGymChatCompletionToolParam(ChatCompletionFunctionToolParam):
    """A function tool offered to the model."""

    function: Required[NeMoGymFunctionDefinition]


class NeMoGymChatCompletionContentPartTextParam(ChatCompletionContentPartTextParam):
    """A text part of a message."""


_TextContent = str | list[NeMoGymChatCompletionContentPartTextParam]


class NeMoGymChatCompletionUserMessageParam(ChatCompletionUserMessageParam):
    """A user message."""

    content: Required[_TextContent]  # type: ignore[misc]


class NeMoGymChatCompletionSystemMessageParam(ChatCompletionSystemMessageParam):
    """A system message."""

    content: Required[_TextContent]  # type: ignore[misc]


class NeMoGymChatCompletionDeveloperMessageParam(ChatCompletionDeveloperMessageParam):
    """A developer message."""

    content: Required[_TextContent]  # type: ignore[misc]


class NeMoGymChatCompletionToolMessageParam(ChatCompletionToolMessageParam):
    """A tool's answer to one tool call."""

    content: Required[_TextContent]  # type: ignore[misc]


class NeMoGymChatCompletionMessageToolCallFunctionParam(TypedDict, total=False):
    """The function of a tool call in a request."""

    arguments: Required[str]
    name: Required[str]


class NeMoGymChatCompletionMessageToolCallParam(ChatCompletionMessageFunctionToolCallParam):
    """A function tool call of an assistant message in a request."""

    function: Required[NeMoGymChatCompletionMessageToolCallFunctionParam]


class NeMoGymChatCompletionAssistantMessageParam(ChatCompletionAssistantMessageParam, total=False):
    """An assistant message given back as history."""

    content: str | list[ContentArrayOfContentPart] | None  # type: ignore[misc]
    tool_calls: list[NeMoGymChatCompletionMessageToolCallParam]  # type: ignore[misc]


class NeMoGymChatCompletionAssistantMessageForTrainingParam(
    NeMoGymChatCompletionAssistantMessageParam
):
    """An assistant message given back with the tokens that produced it (the fields of
    :class:`TokenIdTypedDictFields`)."""

    prompt_token_ids: Required[list[int]]
    generation_token_ids: Required[list[int]]
    generation_log_probs: Required[list[float]]


class NeMoGymFunctionToolParam(FunctionToolParam):
    """A Responses API function tool (typed dict)."""


NeMoGymChatCompletionMessageParam = (
    NeMoGymChatCompletionDeveloperMessageParam
    | NeMoGymChatCompletionSystemMessageParam
    | NeMoGymChatCompletionUserMessageParam
    | NeMoGymChatCompletionAssistantMessageParam
    | NeMoGymChatCompletionToolMessageParam
    | NeMoGymChatCompletionAssistantMessageForTrainingParam
)
"""Any message of a chat request."""


class NeMoGymChatCompletionCreateParamsNonStreaming(BaseModel):
    """A ``/v1/chat/completions`` body (see module docstring)."""

    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]]
    model: str | None = None
    audio: dict[str, Any] | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    max_completion_tokens: int | None = None
    max_tokens: int | None = None
    metadata: dict[str, str] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    n: int | None = None
    parallel_tool_calls: bool = True
    prediction: dict[str, Any] | None = None
    presence_penalty: float | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    service_tier: str | None = None
    stop: str | list[str] | None = None
    store: bool | None = None
    stream_options: dict[str, Any] | None = None
    temperature: float | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    top_logprobs: int | None = None
    top_p: float | None = None
    user: str | None = None
    web_search_options: dict[str, Any] | None = None
    stream: Literal[False] | None = None
