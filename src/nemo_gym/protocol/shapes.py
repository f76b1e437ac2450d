"""Quick shape checks of create params and model responses, without the OpenAI types.

Create params:
``ng_collect_rollouts`` checks every input row before any work starts. Importing the full
Responses models (the ``openai`` package) would cost the CLI over half a second, so it checks
here what users get wrong: unknown or misspelt keys, a missing ``input``, items and tools that
are not objects, and mistyped numbers. Agents validate each row fully when they run it (a row
that fails there is recorded as ``invalid_input``). ``CREATE_PARAMS_FIELDS`` is kept equal to
the model's fields by a test.

Model responses: the agent checks on every step only what its loop relies on (an ``output``
list of typed items; function calls with a name, arguments and call id). The full Responses
model validates the finished trajectory once, in the resources server's ``/verify``, instead of
on every step of every rollout.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

CREATE_PARAMS_FIELDS = frozenset(
    {
        "input",
        "instructions",
        "model",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "max_output_tokens",
        "max_tool_calls",
        "seed",
        "stop",
        "reasoning",
        "text",
        "metadata",
        "include",
        "truncation",
        "previous_response_id",
        "prompt",
        "service_tier",
        "store",
        "background",
        "top_logprobs",
        "user",
        "stream",
        "return_token_id_information",
    }
)
_NUMBERS = {
    "temperature": (int, float),
    "top_p": (int, float),
    "max_output_tokens": (int,),
    "max_tool_calls": (int,),
    "seed": (int,),
    "top_logprobs": (int,),
}


def item_type(item: Mapping[str, Any]) -> str | None:
    """The ``type`` of a Responses item, inferred from its fields when it has none.

    NeMo Gym's item models default ``type``, and its agents send items dumped without their
    defaults: ``{"call_id", "output"}`` is a ``function_call_output``, ``{"call_id", "name",
    "arguments"}`` a ``function_call``, ``{"id", "summary"}`` a ``reasoning`` item, and an item
    with a ``role`` or an ``id`` and ``content`` a ``message``. ``None`` when nothing fits.
    """
    kind = item.get("type")
    if kind is not None:
        return str(kind)
    if item.get("role") is not None:
        return "message"
    if item.get("call_id") is not None:
        return "function_call" if item.get("name") is not None else "function_call_output"
    if item.get("summary") is not None:
        return "reasoning"
    if item.get("id") is not None and isinstance(item.get("content"), list):
        return "message"
    return None


def shape_error(params: dict[str, Any]) -> str | None:
    """Describe the first shape problem of ``params`` (``None`` when it looks right)."""
    for key in params:
        if key not in CREATE_PARAMS_FIELDS:
            close = difflib.get_close_matches(key, sorted(CREATE_PARAMS_FIELDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"{key}: unknown key{hint}"
    if "input" not in params:
        return "input: missing (a string or a list of input items)"
    items = params["input"]
    if not isinstance(items, (str, list)):
        return "input: must be a string or a list of input items"
    if isinstance(items, list):
        for i, item in enumerate(items):
            if not isinstance(item, dict) or item_type(item) is None:
                return f"input.{i}: each item must be an object with a `role` or a `type`"
    tools = params.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(t, dict) and "type" in t for t in tools):
        return "tools: must be a list of objects with a `type`"
    for key, types in _NUMBERS.items():
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            return f"{key}: must be a number, got {value!r}"
    return None


def response_shape_error(response: Any) -> str | None:
    """Describe the first problem of a model response the agent loop cannot use."""
    if not isinstance(response, dict):
        return "the response is not a JSON object"
    output = response.get("output")
    if not isinstance(output, list):
        return "`output` is missing or not a list"
    for i, item in enumerate(output):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            return f"output.{i}: not an item with a `type`"
        if item["type"] == "function_call":
            for key in ("name", "arguments", "call_id"):
                if not isinstance(item.get(key), str):
                    return f"output.{i}.{key}: a function call needs a string `{key}`"
        elif item["type"] == "message" and not isinstance(item.get("content"), (list, str)):
            return f"output.{i}.content: a message needs content"
    return None
