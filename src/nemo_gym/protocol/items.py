"""Responses API items as environments build them: OpenAI's models with NeMo Gym's defaults.

OpenAI's pydantic models require every discriminating field (``type``, an output message's
``role`` and ``status``); NeMo Gym's item models default them, and environments written for it
rely on that (``NeMoGymFunctionCallOutput(call_id=..., output=...)``). Each model here subclasses
OpenAI's own (so ``isinstance`` against OpenAI's types still holds and unknown fields are kept)
and only adds those defaults, or narrows a content list to the lenient part models below.

The ``...ForTraining`` variants carry the token data a training-mode model server attaches
(``prompt_token_ids``, ``generation_token_ids``, ``generation_log_probs``).

Neighbours: ``responses`` dispatches input and output items to these models;
``nemo_gym.openai_utils`` re-exports them under NeMo Gym's names.
"""

from __future__ import annotations

from typing import Literal

from openai.types.responses import (
    EasyInputMessage,
    ResponseFunctionToolCall,
    ResponseInputTextParam,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseReasoningItem,
)
from openai.types.responses.response_input_item import FunctionCallOutput, Message
from openai.types.responses.response_reasoning_item import Summary
from pydantic import BaseModel

Status = Literal["in_progress", "completed", "incomplete"]


class TokenIdFields(BaseModel):
    """Token-level data a training-mode model server attaches to what it generated."""

    prompt_token_ids: list[int]
    generation_token_ids: list[int]
    generation_log_probs: list[float]


class NeMoGymSummary(Summary):
    """One ``summary_text`` part of a reasoning item."""


class NeMoGymResponseOutputText(ResponseOutputText):
    """An ``output_text`` part; ``type`` defaults."""

    type: Literal["output_text"] = "output_text"


class NeMoGymResponseOutputRefusal(ResponseOutputRefusal):
    """A ``refusal`` part; ``type`` defaults."""

    type: Literal["refusal"] = "refusal"


NeMoGymContent = NeMoGymResponseOutputText | NeMoGymResponseOutputRefusal
"""A part of an assistant message (a part without ``type`` is told apart by its fields)."""


class NeMoGymResponseOutputMessage(ResponseOutputMessage):
    """An assistant message; ``role``, ``status`` and ``type`` default."""

    content: list[NeMoGymContent]  # type: ignore[assignment]
    role: Literal["assistant"] = "assistant"
    status: Status = "completed"
    type: Literal["message"] = "message"


class NeMoGymEasyInputMessage(EasyInputMessage):
    """A message with string or part-list content, any role; ``type`` defaults to ``message``."""

    type: Literal["message"] | None = "message"


class NeMoGymMessage(Message):
    """A user, system or developer message with a part list; ``status`` and ``type`` default."""

    status: Status | None = "completed"
    type: Literal["message"] | None = "message"


class NeMoGymFunctionCallOutput(FunctionCallOutput):
    """A tool's output for one function call; ``type`` defaults."""

    type: Literal["function_call_output"] = "function_call_output"


class NeMoGymResponseFunctionToolCall(ResponseFunctionToolCall):
    """A function call the model made; ``type`` defaults."""

    type: Literal["function_call"] = "function_call"


class NeMoGymResponseReasoningItem(ResponseReasoningItem):
    """A reasoning item; ``type`` defaults."""

    summary: list[NeMoGymSummary]  # type: ignore[assignment]
    type: Literal["reasoning"] = "reasoning"


class NeMoGymResponseInputText(ResponseInputTextParam):
    """An ``input_text`` part (a typed dict, as in OpenAI's params)."""


class NeMoGymEasyInputMessageForTraining(NeMoGymEasyInputMessage, TokenIdFields):
    """A message with the tokens that produced it."""


class NeMoGymMessageForTraining(NeMoGymMessage, TokenIdFields):
    """A message with the tokens that produced it."""


class NeMoGymResponseOutputMessageForTraining(NeMoGymResponseOutputMessage, TokenIdFields):
    """An assistant message with the tokens that produced it."""


class NeMoGymResponseFunctionToolCallForTraining(NeMoGymResponseFunctionToolCall, TokenIdFields):
    """A function call with the tokens that produced it."""


class NeMoGymResponseReasoningItemForTraining(NeMoGymResponseReasoningItem, TokenIdFields):
    """A reasoning item with the tokens that produced it."""


RESPONSES_TO_TRAIN: dict[type[BaseModel], type[BaseModel]] = {
    NeMoGymEasyInputMessage: NeMoGymEasyInputMessageForTraining,
    NeMoGymMessage: NeMoGymMessageForTraining,
    NeMoGymResponseOutputMessage: NeMoGymResponseOutputMessageForTraining,
    NeMoGymResponseFunctionToolCall: NeMoGymResponseFunctionToolCallForTraining,
    NeMoGymResponseReasoningItem: NeMoGymResponseReasoningItemForTraining,
}
"""Each item model to its variant with token data."""
