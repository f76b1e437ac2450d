"""The model's final answer in a response: the one place environments read it from.

``final_answer_text(response)`` is what a verifier should check. Scopes, by what the
environment needs:

* ``"last_message"`` (default): the last assistant message. In a multi-step rollout the model
  usually says something before and between tool calls; only its last word is the answer;
* ``"trailing"``: the assistant messages after the last tool call or tool output (a model that
  answers in several messages at the end);
* ``"all"``: every assistant message of the response, in order.

Only ``output_text`` parts count: reasoning, refusals, tool calls and tool outputs never do.
Messages are joined with a newline, the parts of one message as they are. Works on the typed
response (``NeMoGymResponse``), on its ``output`` list, and on plain dicts of either.
Used by the environments in ``resources_servers/`` and by the ``ng_init_resources_server``
template; neighbours: ``resources.server`` (the base), ``protocol`` (the item models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

AnswerScope = Literal["last_message", "trailing", "all"]


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


def _message_text(item: Any) -> str:
    content = _get(item, "content")
    if isinstance(content, str):
        return content
    return "".join(
        str(_get(part, "text") or "")
        for part in content or []
        if _get(part, "type") == "output_text"
    )


def _is_assistant_message(item: Any) -> bool:
    return _get(item, "type") in ("message", None) and _get(item, "role") in ("assistant", None)


def final_answer_text(response: Any, scope: AnswerScope = "last_message") -> str:
    """The final answer's text (see the module docstring); ``""`` when there is none."""
    output: Sequence[Any] = (
        response if isinstance(response, (list, tuple)) else (_get(response, "output") or [])
    )
    if scope == "all":
        return "\n".join(_message_text(i) for i in output if _is_assistant_message(i))
    texts: list[str] = []
    for item in reversed(output):
        kind = _get(item, "type")
        if _is_assistant_message(item):
            texts.append(_message_text(item))
            if scope == "last_message":
                break
        elif kind in ("function_call", "function_call_output") and scope == "trailing":
            break
    return "\n".join(reversed(texts))
