"""Responses API request/response models, built on ``openai.types.responses``.

* :class:`NeMoGymResponseCreateParamsNonStreaming` is what a dataset row's
  ``responses_create_params`` holds and what model servers accept: strict (unknown keys are an
  error that names the key), with ``input`` items validated as the item models of ``items``
  (OpenAI's, with NeMo Gym's defaults), so rows NeMo Gym wrote are accepted as they are.
* :class:`NeMoGymResponse` is OpenAI's ``Response``; model servers return it.
* Training variants of items carry ``prompt_token_ids``, ``generation_token_ids`` and
  ``generation_log_probs``. OpenAI's models keep unknown fields, so these fields survive every
  hop even where the plain type is used.

Input items are dispatched to their model by a callable discriminator instead of trying each of
OpenAI's thirty item types in turn: this runs on every hop of every rollout.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from openai.types.responses import Response, ResponseInputItem, ResponseOutputItem
from openai.types.shared_params import Reasoning
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from nemo_gym.protocol.items import (
    NeMoGymEasyInputMessage,
    NeMoGymEasyInputMessageForTraining,
    NeMoGymFunctionCallOutput,
    NeMoGymMessage,
    NeMoGymMessageForTraining,
    NeMoGymResponseFunctionToolCall,
    NeMoGymResponseFunctionToolCallForTraining,
    NeMoGymResponseOutputMessage,
    NeMoGymResponseOutputMessageForTraining,
    NeMoGymResponseOutputText,
    NeMoGymResponseReasoningItem,
    NeMoGymResponseReasoningItemForTraining,
    TokenIdFields,
)
from nemo_gym.protocol.shapes import item_type
from nemo_gym.protocol.usage import NeMoGymResponseUsage

__all__ = [
    "FunctionTool",
    "NeMoGymEasyInputMessage",
    "NeMoGymFunctionCallOutput",
    "NeMoGymInputItem",
    "NeMoGymMessage",
    "NeMoGymOutputItem",
    "NeMoGymResponse",
    "NeMoGymResponseCreateParamsNonStreaming",
    "NeMoGymResponseFunctionToolCall",
    "NeMoGymResponseFunctionToolCallForTraining",
    "NeMoGymResponseOutputMessage",
    "NeMoGymResponseOutputMessageForTraining",
    "NeMoGymResponseOutputText",
    "NeMoGymResponseReasoningItem",
    "NeMoGymResponseReasoningItemForTraining",
    "TokenIdFields",
]

_FAST_TAGS = frozenset({"function_call", "function_call_output", "reasoning"})
_TRAINABLE = frozenset({"easy", "message", "output_message", "function_call", "reasoning"})


def _input_item_tag(item: Any) -> str:
    """Which model an item (a dict from the wire) is validated as.

    The ``type``, inferred from the fields when absent (:func:`~nemo_gym.protocol.shapes.
    item_type`: NeMo Gym's models default ``type``, and its agents send items dumped without
    their defaults), picks the model. A message with string content is an easy input message
    whatever its ``type`` says (NeMo Gym writes ``{"role": "user", "content": "...", "type":
    "message"}``); an assistant message with a part list is an output message; other messages
    with a part list are input messages. An item carrying ``generation_token_ids`` is validated
    as its training variant. Model instances are tagged by their class.
    """
    if not isinstance(item, dict):
        return _class_tag(item)
    kind = item_type(item)
    if kind == "message":
        role = item.get("role")
        if isinstance(item.get("content"), str):
            tag = "easy"
        elif role is None or role == "assistant":
            tag = "output_message"
        else:
            tag = "message" if item.get("type") is not None else "easy"
    elif kind in _FAST_TAGS:
        tag = kind
    else:
        return "other"
    if tag in _TRAINABLE and item.get("generation_token_ids") is not None:
        return tag + "_train"
    return tag


def _class_tag(item: Any) -> str:
    for cls in type(item).__mro__:
        tag = _CLASS_TAGS.get(cls)
        if tag is not None:
            return tag
    return "other"


_CLASS_TAGS: dict[type, str] = {
    NeMoGymEasyInputMessageForTraining: "easy_train",
    NeMoGymMessageForTraining: "message_train",
    NeMoGymResponseOutputMessageForTraining: "output_message_train",
    NeMoGymResponseFunctionToolCallForTraining: "function_call_train",
    NeMoGymResponseReasoningItemForTraining: "reasoning_train",
    NeMoGymEasyInputMessage: "easy",
    NeMoGymMessage: "message",
    NeMoGymResponseOutputMessage: "output_message",
    NeMoGymResponseFunctionToolCall: "function_call",
    NeMoGymFunctionCallOutput: "function_call_output",
    NeMoGymResponseReasoningItem: "reasoning",
}


def _foreign_models_as_dicts(item: Any) -> Any:
    """An item given as another pydantic model (OpenAI's own types) is read as its fields."""
    if isinstance(item, BaseModel) and _class_tag(item) == "other":
        return item.model_dump()
    return item


NeMoGymInputItem = Annotated[
    Annotated[NeMoGymEasyInputMessage, Tag("easy")]
    | Annotated[NeMoGymMessage, Tag("message")]
    | Annotated[NeMoGymResponseOutputMessage, Tag("output_message")]
    | Annotated[NeMoGymResponseFunctionToolCall, Tag("function_call")]
    | Annotated[NeMoGymFunctionCallOutput, Tag("function_call_output")]
    | Annotated[NeMoGymResponseReasoningItem, Tag("reasoning")]
    | Annotated[NeMoGymEasyInputMessageForTraining, Tag("easy_train")]
    | Annotated[NeMoGymMessageForTraining, Tag("message_train")]
    | Annotated[NeMoGymResponseOutputMessageForTraining, Tag("output_message_train")]
    | Annotated[NeMoGymResponseFunctionToolCallForTraining, Tag("function_call_train")]
    | Annotated[NeMoGymResponseReasoningItemForTraining, Tag("reasoning_train")]
    | Annotated[ResponseInputItem, Tag("other")],
    Discriminator(_input_item_tag),
    BeforeValidator(_foreign_models_as_dicts),
]
"""An item of Responses ``input``: the item kinds NeMo Gym validates, with its defaults; any
other OpenAI input item (images, files, built-in tool calls) as OpenAI's own model."""


NeMoGymOutputItem = Annotated[
    Annotated[NeMoGymResponseOutputMessage, Tag("output_message")]
    | Annotated[NeMoGymResponseFunctionToolCall, Tag("function_call")]
    | Annotated[NeMoGymFunctionCallOutput, Tag("function_call_output")]
    | Annotated[NeMoGymResponseReasoningItem, Tag("reasoning")]
    | Annotated[NeMoGymEasyInputMessage, Tag("easy")]
    | Annotated[NeMoGymMessage, Tag("message")]
    | Annotated[NeMoGymEasyInputMessageForTraining, Tag("easy_train")]
    | Annotated[NeMoGymMessageForTraining, Tag("message_train")]
    | Annotated[NeMoGymResponseOutputMessageForTraining, Tag("output_message_train")]
    | Annotated[NeMoGymResponseFunctionToolCallForTraining, Tag("function_call_train")]
    | Annotated[NeMoGymResponseReasoningItemForTraining, Tag("reasoning_train")]
    | Annotated[ResponseOutputItem, Tag("other")],
    Discriminator(_input_item_tag),
    BeforeValidator(_foreign_models_as_dicts),
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


def _tool_tag(tool: Any) -> str:
    kind = tool.get("type") if isinstance(tool, dict) else getattr(tool, "type", None)
    return "function" if kind in (None, "function") else "other"


#: A function tool is validated as one (a name that is not a string is a 422 naming the field,
#: not a crash later); other tool types (web search, ...) pass through as they are.
NeMoGymTool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[dict[str, Any], Tag("other")],
    Discriminator(_tool_tag),
]


class NeMoGymResponseCreateParamsNonStreaming(BaseModel):
    """The body of ``POST /v1/responses`` (non-streaming), as in OpenAI's Responses API."""

    model_config = ConfigDict(extra="forbid")

    input: str | list[NeMoGymInputItem]
    instructions: str | None = None
    model: str | None = None
    tools: list[NeMoGymTool] = Field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool | None = True  # NeMo Gym's recorded rows write null
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
    servers report different token details (a count may be unknown, and one a server does not
    report at all leaves ``usage`` a plain dict), and a missing detail must not make a valid
    answer unusable. ``parallel_tool_calls`` and ``tool_choice`` may be null: servers echo the
    request's values, and NeMo Gym's rows write nulls there.
    """

    output: list[NeMoGymOutputItem]  # type: ignore[assignment]
    usage: NeMoGymResponseUsage | dict[str, Any] | None = None  # type: ignore[assignment]
    parallel_tool_calls: bool | None = True  # type: ignore[assignment]
    tool_choice: Any = "auto"
