"""Responses API request/response models, built on ``openai.types.responses``.

* :class:`NeMoGymResponseCreateParamsNonStreaming` is what a dataset row's
  ``responses_create_params`` holds and what model servers accept: strict (unknown keys are an
  error that names the key), with ``input`` items validated as OpenAI's own item models.
* :class:`NeMoGymResponse` is OpenAI's ``Response``; model servers return it.
* Training variants of output items carry ``prompt_token_ids``, ``generation_token_ids`` and
  ``generation_log_probs``. OpenAI's models keep unknown fields, so these fields survive every
  hop even where the plain type is used.

Input items are dispatched to their model by a callable discriminator instead of trying each of
OpenAI's thirty item types in turn: this runs on every hop of every rollout.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from openai.types.responses import (
    EasyInputMessage,
    Response,
    ResponseFunctionToolCall,
    ResponseInputItem,
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseUsage,
)
from openai.types.responses.response_input_item import FunctionCallOutput, Message
from openai.types.shared_params import Reasoning
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class TokenIdFields(BaseModel):
    """Token-level data a training-mode model server attaches to what it generated."""

    prompt_token_ids: list[int]
    generation_token_ids: list[int]
    generation_log_probs: list[float]


class NeMoGymResponseOutputMessageForTraining(ResponseOutputMessage, TokenIdFields):
    """An assistant message with the tokens that produced it."""


class NeMoGymResponseFunctionToolCallForTraining(ResponseFunctionToolCall, TokenIdFields):
    """A function call with the tokens that produced it."""


class NeMoGymResponseReasoningItemForTraining(ResponseReasoningItem, TokenIdFields):
    """A reasoning item with the tokens that produced it."""


def _input_item_tag(item: Any) -> str:
    get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
    kind = get("type")
    if kind is None or (kind == "message" and get("id") is None and get("role") != "assistant"):
        if kind is None and get("role") is not None:
            return "easy"
        return "message" if kind == "message" else "other"
    if kind == "message":
        return "output_message" if get("role") == "assistant" else "message"
    return kind if kind in _FAST_TAGS else "other"


_FAST_TAGS = frozenset({"function_call", "function_call_output", "reasoning"})

NeMoGymInputItem = Annotated[
    Annotated[EasyInputMessage, Tag("easy")]
    | Annotated[Message, Tag("message")]
    | Annotated[ResponseOutputMessage, Tag("output_message")]
    | Annotated[ResponseFunctionToolCall, Tag("function_call")]
    | Annotated[FunctionCallOutput, Tag("function_call_output")]
    | Annotated[ResponseReasoningItem, Tag("reasoning")]
    | Annotated[ResponseInputItem, Tag("other")],
    Discriminator(_input_item_tag),
]


NeMoGymOutputItem = Annotated[
    Annotated[ResponseOutputMessage, Tag("output_message")]
    | Annotated[ResponseFunctionToolCall, Tag("function_call")]
    | Annotated[FunctionCallOutput, Tag("function_call_output")]
    | Annotated[ResponseReasoningItem, Tag("reasoning")]
    | Annotated[EasyInputMessage, Tag("easy")]
    | Annotated[Message, Tag("message")]
    | Annotated[ResponseOutputItem, Tag("other")],
    Discriminator(_input_item_tag),
]
"""An item of a trajectory's output: what the model produced, and the tool outputs in between."""


class FunctionTool(BaseModel):
    """A function tool offered to the model (``{"type": "function", "name", "parameters"}``)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"] = "function"
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NeMoGymResponseCreateParamsNonStreaming(BaseModel):
    """The body of ``POST /v1/responses`` (non-streaming), as in OpenAI's Responses API."""

    model_config = ConfigDict(extra="forbid")

    input: str | list[NeMoGymInputItem]
    instructions: str | None = None
    model: str | None = None
    tools: list[FunctionTool | dict[str, Any]] = Field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    reasoning: Reasoning | dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    previous_response_id: str | None = None
    prompt: dict[str, Any] | None = None
    service_tier: str | None = None
    store: bool | None = None
    background: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    stream: Literal[False] | None = None
    return_token_id_information: bool | None = Field(
        default=None,
        description="Ask a training-mode model server for token ids and logprobs.",
    )


class NeMoGymResponse(Response):
    """A model server's answer: OpenAI's ``Response`` (unknown fields are kept).

    ``output`` also admits ``function_call_output`` items, since an agent's trajectory
    interleaves the model's items with tool outputs. ``usage`` is lenient: OpenAI-compatible
    servers report different token details, and a
    missing detail must not make a valid answer unusable.
    """

    output: list[NeMoGymOutputItem]  # type: ignore[assignment]
    usage: ResponseUsage | dict[str, Any] | None = None  # type: ignore[assignment]


NeMoGymEasyInputMessage = EasyInputMessage
NeMoGymMessage = Message
NeMoGymResponseOutputMessage = ResponseOutputMessage
NeMoGymResponseOutputText = ResponseOutputText
NeMoGymResponseFunctionToolCall = ResponseFunctionToolCall
NeMoGymFunctionCallOutput = FunctionCallOutput
NeMoGymResponseReasoningItem = ResponseReasoningItem
