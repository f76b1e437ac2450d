"""Converting between the Responses API and Chat Completions, both ways.

Model servers in front of a Chat Completions engine (``vllm_model``, ``local_model``) speak
Responses to Gym and Chat Completions to the engine:

* :func:`responses_to_chat_request`: ``instructions`` become a system message; consecutive
  assistant items of one turn (reasoning, text, function calls) become one assistant message,
  reasoning as ``<think>...</think>`` before the text; ``function_call_output`` items become
  ``tool`` messages; token-id fields carried by a turn's items move onto its assistant message
  (so a training engine can reuse the exact tokens); ``max_output_tokens`` becomes ``max_tokens``
  and function tools and ``tool_choice`` take the Chat Completions shapes.
* :func:`chat_to_response_output`: an assistant message becomes a ``reasoning`` item (from
  ``reasoning_content``/``reasoning`` or ``<think>`` spans), a ``message`` item, then one
  ``function_call`` item per tool call, in that order. Token-id fields go on the last item.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from nemo_gym.protocol.shapes import item_type

TOKEN_FIELDS = ("prompt_token_ids", "generation_token_ids", "generation_log_probs")
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
#: Create params passed to the chat endpoint under the same name.
_SAME_NAME = (
    "temperature",
    "top_p",
    "seed",
    "stop",
    "parallel_tool_calls",
    "user",
    "metadata",
    "top_logprobs",
)


class ConversionError(ValueError):
    """Input that has no Chat Completions equivalent (names the item)."""


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for i, part in enumerate(content):
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(part.get("text", ""))
        elif kind == "refusal":
            parts.append(part.get("refusal", ""))
        else:
            raise ConversionError(f"{where}.content.{i}: content of type {kind!r} is not supported")
    return "".join(parts)


class _AssistantTurn:
    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.text: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.tokens: dict[str, Any] = {}

    def empty(self) -> bool:
        return not (self.reasoning or self.text or self.tool_calls)

    def message(self) -> dict[str, Any]:
        content = "".join(f"<think>{r}</think>" for r in self.reasoning) + "".join(self.text)
        msg: dict[str, Any] = {"role": "assistant", "content": content or None}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        msg.update(self.tokens)
        return msg


def input_to_messages(items: Any, instructions: str | None = None) -> list[dict[str, Any]]:
    """Turn Responses ``input`` (a string or items) into chat messages.

    Raises:
        ConversionError: an item or content part has no chat equivalent.
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    turn = _AssistantTurn()

    def flush() -> None:
        nonlocal turn
        if not turn.empty():
            messages.append(turn.message())
        turn = _AssistantTurn()

    for i, item in enumerate(items):
        where = f"input.{i}"
        kind = item_type(item) or "message"
        tokens = {k: item[k] for k in TOKEN_FIELDS if k in item}
        if kind == "message":
            role = item.get("role")
            if role == "assistant":
                turn.text.append(_text_of(item.get("content"), where))
                turn.tokens.update(tokens)
                continue
            if role not in ("user", "system", "developer"):
                raise ConversionError(f"{where}.role: {role!r} is not a chat role")
            flush()
            messages.append({"role": role, "content": _text_of(item.get("content"), where)})
        elif kind == "reasoning":
            texts = [s.get("text", "") for s in item.get("summary") or []]
            texts += [c.get("text", "") for c in item.get("content") or []]
            turn.reasoning.append("\n".join(t for t in texts if t))
            turn.tokens.update(tokens)
        elif kind == "function_call":
            turn.tool_calls.append(
                {
                    "id": item.get("call_id") or item.get("id"),
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"},
                }
            )
            turn.tokens.update(tokens)
        elif kind == "function_call_output":
            flush()
            output = item.get("output")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": output if isinstance(output, str) else _text_of(output, where),
                }
            )
        else:
            raise ConversionError(f"{where}.type: items of type {kind!r} are not supported")
    flush()
    return messages


def tools_to_chat(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Responses function tools -> Chat Completions tools (other tool types are refused)."""
    out = []
    for i, tool in enumerate(tools or []):
        if tool.get("type") != "function":
            raise ConversionError(f"tools.{i}.type: only function tools are supported")
        function = {
            k: tool[k]
            for k in ("name", "description", "parameters", "strict")
            if tool.get(k) is not None
        }
        out.append({"type": "function", "function": function})
    return out


def tool_choice_to_chat(choice: Any) -> Any:
    """``{"type": "function", "name": f}`` -> ``{"type": "function", "function": {"name": f}}``."""
    if isinstance(choice, dict) and choice.get("type") == "function" and "name" in choice:
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice


def responses_to_chat_request(params: dict[str, Any]) -> dict[str, Any]:
    """Build a Chat Completions request from Responses create params."""
    request: dict[str, Any] = {
        "messages": input_to_messages(params.get("input", []), params.get("instructions")),
    }
    tools = tools_to_chat(params.get("tools"))
    if tools:
        request["tools"] = tools
        if params.get("tool_choice") is not None:
            request["tool_choice"] = tool_choice_to_chat(params["tool_choice"])
    if params.get("max_output_tokens") is not None:
        request["max_tokens"] = params["max_output_tokens"]
    for key in _SAME_NAME:
        if params.get(key) is not None and (key != "parallel_tool_calls" or tools):
            request[key] = params[key]
    if params.get("model"):
        request["model"] = params["model"]
    extra = _extra_body(params.get("metadata"))
    for key, value in extra.items():  # NeMo Gym's per-request extras (a seed, say)
        request.setdefault(key, value)
    return request


def _extra_body(metadata: Any) -> dict[str, Any]:
    """``metadata.extra_body``: a JSON object in a string (metadata values are strings).

    Raises:
        ConversionError: it is not a JSON object.
    """
    raw = metadata.get("extra_body") if isinstance(metadata, dict) else None
    if not raw:
        return {}
    try:
        extra = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        extra = None
    if not isinstance(extra, dict):
        raise ConversionError(f"metadata.extra_body: not a JSON object: {str(raw)[:200]!r}")
    return extra


def _default_if_none(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when it is missing or null (NeMo Gym's rows write nulls)."""
    return default if value is None else value


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def chat_to_response_output(
    message: dict[str, Any], tokens: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Turn one assistant chat message into Responses output items."""
    content = message.get("content") or ""
    reasoning = [r for r in (message.get("reasoning_content"), message.get("reasoning")) if r]
    reasoning += _THINK.findall(content)
    text = _THINK.sub("", content)
    if "<think>" in text and "</think>" not in text:  # cut off while thinking
        head, _, rest = text.partition("<think>")
        reasoning.append(rest)
        text = head
    text = text.strip() if reasoning else text
    items: list[dict[str, Any]] = []
    if reasoning:
        items.append(
            {
                "type": "reasoning",
                "id": _new_id("rs"),
                "summary": [{"type": "summary_text", "text": r.strip()} for r in reasoning],
            }
        )
    tool_calls = message.get("tool_calls") or []
    if text or not (items or tool_calls):
        items.append(
            {
                "type": "message",
                "id": _new_id("msg"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    for call in tool_calls:
        fn = call.get("function") or {}
        call_id = call.get("id") or _new_id("call")
        items.append(
            {
                "type": "function_call",
                "id": _new_id("fc"),
                "call_id": call_id,
                "name": fn.get("name", ""),
                "arguments": fn.get("arguments") or "{}",
                "status": "completed",
            }
        )
    if tokens:
        items[-1].update(tokens)
    return items


def chat_to_response(
    completion: dict[str, Any],
    params: dict[str, Any],
    model: str,
    tokens: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a Responses API response from a chat completion and the original params."""
    choice = (completion.get("choices") or [{}])[0]
    output = chat_to_response_output(choice.get("message") or {}, tokens)
    usage = completion.get("usage") or {}
    response: dict[str, Any] = {
        "id": _new_id("resp"),
        "object": "response",
        "created_at": float(completion.get("created") or 0),
        "model": model,
        "status": "completed",
        "output": output,
        "tools": params.get("tools") or [],
        "tool_choice": _default_if_none(params.get("tool_choice"), "auto"),
        "parallel_tool_calls": _default_if_none(params.get("parallel_tool_calls"), True),
        "usage": {
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        },
    }
    for key in ("temperature", "top_p", "max_output_tokens", "instructions", "metadata"):
        if params.get(key) is not None:
            response[key] = params[key]
    if choice.get("finish_reason") == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
        for item in output:
            if item["type"] == "message":
                item["status"] = "incomplete"
    return response
