"""Chat messages -> prompt text for the local model, and the grammar its tool calls follow.

The prompt is rendered with the model's own chat template (``tokenizer.chat_template`` from the
GGUF file) in a sandboxed Jinja environment. Templates of small models rarely know tools, so
tools are described in the system message and tool calls are written in the assistant's text as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (the format SmolLM2 and Qwen-style
models are trained on); tool results are ``tool`` turns.

:func:`tool_grammar` builds a GBNF grammar from the offered tools' JSON schemas, so decoding can
only produce a call of an offered tool with arguments valid for its schema: ``required`` and a
named function force a call, ``auto`` allows text or a call, ``none`` offers no tools.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _raise(message: str) -> None:
    raise ValueError(message)


class PromptRenderer:
    """Renders chat messages with a chat template (sandboxed Jinja2)."""

    def __init__(self, template: str | None, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        self.template = env.from_string(template or _FALLBACK_TEMPLATE)
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt for ``messages``, with ``tools`` described in the system message."""
        return self.template.render(
            messages=prepare_messages(messages, tools),
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )

    def splice_points(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> tuple[int, str, str] | None:
        """Where a prompt can reuse the exact tokens of the last trained assistant turn.

        Returns ``(k, glue, rest)``: message ``k`` is the last assistant turn that carries
        ``prompt_token_ids`` and ``generation_token_ids``; the prompt is those tokens, then
        ``glue`` (what the template writes after that turn's end-of-turn marker), then
        ``rest`` (the later messages and the generation prompt), each tokenised on its own.
        ``None`` when there is no such turn or the template cannot be split there.
        """
        k = next(
            (
                i
                for i in range(len(messages) - 1, -1, -1)
                if messages[i].get("role") == "assistant"
                and "generation_token_ids" in messages[i]
                and "prompt_token_ids" in messages[i]
            ),
            None,
        )
        if k is None or not self.eos_token:
            return None
        full = self.render(messages, tools)
        head = self.render(messages[: k + 1], tools, add_generation_prompt=False)
        end = head.rfind(self.eos_token)
        if end < 0 or not full.startswith(head):
            return None
        return k, head[end + len(self.eos_token) :], full[len(head) :]


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    """How the offered tools are described to the model."""
    lines = [
        json.dumps(
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "parameters": t["function"].get("parameters") or {},
            }
        )
        for t in tools
    ]
    return (
        "You can call these tools:\n<tools>\n" + "\n".join(lines) + "\n</tools>\n"
        f'To call a tool, answer only with {TOOL_CALL_OPEN}{{"name": <tool name>, '
        f'"arguments": <arguments object>}}{TOOL_CALL_CLOSE}.'
    )


def prepare_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Messages in the plain ``{role, content}`` form a simple template can render."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if role == "developer":
            role = "system"
        if role == "assistant" and message.get("tool_calls"):
            calls = [
                TOOL_CALL_OPEN
                + json.dumps(
                    {"name": c["function"]["name"], "arguments": _loads(c["function"]["arguments"])}
                )
                + TOOL_CALL_CLOSE
                for c in message["tool_calls"]
            ]
            content = (content + "\n" if content else "") + "\n".join(calls)
        out.append({"role": role, "content": content})
    if tools:
        text = tools_system_text(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + text}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


MAX_PARALLEL_CALLS = 3
#: Longest string the grammar lets the model write where the schema sets no ``maxLength``.
MAX_STRING_LENGTH = 256
_ENUMERABLE_RANGE = 256


def grammar_schema(schema: Any) -> Any:
    """The schema to build the grammar from: the tool's own, made enforceable by a grammar.

    llama-cpp-python's schema-to-grammar conversion ignores numeric bounds, so a bounded
    integer range of up to 256 values becomes an ``enum`` of those values; strings without a
    ``maxLength`` get one (:data:`MAX_STRING_LENGTH`) so a small model cannot ramble until it
    runs out of tokens. Arguments are still validated against the original schema.
    """
    if isinstance(schema, list):
        return [grammar_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: grammar_schema(v) for k, v in schema.items()}
    if schema.get("type") == "integer":
        low = schema.get(
            "minimum",
            schema["exclusiveMinimum"] + 1
            if isinstance(schema.get("exclusiveMinimum"), int)
            else None,
        )
        high = schema.get(
            "maximum",
            schema["exclusiveMaximum"] - 1
            if isinstance(schema.get("exclusiveMaximum"), int)
            else None,
        )
        if isinstance(low, int) and isinstance(high, int) and 0 <= high - low < _ENUMERABLE_RANGE:
            return {"enum": list(range(low, high + 1))}
    if (
        schema.get("type") == "string"
        and "enum" not in schema
        and "const" not in schema
        and "maxLength" not in schema
        and "format" not in schema
        and "pattern" not in schema
    ):
        out["maxLength"] = MAX_STRING_LENGTH
    return out


def _strict_json_chars(gbnf: str) -> str:
    """Forbid raw control characters inside strings, as JSON does.

    llama-cpp-python's converter lets a string hold any character but a quote or backslash, so
    a raw newline could be sampled inside a value and the call would not parse as JSON.
    """
    return gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)


_LOOSE_CHAR = 'char ::= [^"\\\\]'  # GBNF: any character but a quote or a backslash
_STRICT_CHAR = 'char ::= [^"\\\\\\x00-\\x1F\\x7F]'  # ...and no control character


def _rename_root(gbnf: str, name: str) -> str:
    return re.sub(r"^root\s*::=", f"{name} ::=", gbnf, flags=re.MULTILINE)


def tool_grammar(tools: list[dict[str, Any]], tool_choice: Any, parallel: bool) -> str | None:
    """The GBNF grammar decoding must follow, or ``None`` for free text.

    Args:
        tools: Chat Completions function tools offered.
        tool_choice: ``"auto"``, ``"required"``, ``"none"`` or ``{"type": "function",
            "function": {"name": ...}}``.
        parallel: whether several calls may be made in one answer.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if not tools or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        tools = [t for t in tools if t["function"]["name"] == wanted]
        if not tools:
            raise ValueError(f"tool_choice names {wanted!r}, which is not among the tools")
    variants = []
    for tool in tools:
        params = grammar_schema(tool["function"].get("parameters") or {"type": "object"})
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool["function"]["name"]}, "arguments": params},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema = variants[0] if len(variants) == 1 else {"oneOf": variants}
    call_rules = _strict_json_chars(
        _rename_root(json_schema_to_gbnf(json.dumps(schema), ["name", "arguments"]), "call")
    )
    one = f'"{TOOL_CALL_OPEN}" call "{TOOL_CALL_CLOSE}"'
    calls = f'{one} ("\\n" {one}){{0,{MAX_PARALLEL_CALLS - 1}}}' if parallel else one
    forced = tool_choice == "required" or isinstance(tool_choice, dict)
    root = f"root ::= {calls}" if forced else f"root ::= {calls} | text\ntext ::= [^<] [^\\x00]*"
    return root + "\n" + call_rules


def parse_tool_calls(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split generated text into (plain text, [(tool name, arguments JSON)]).

    Each call is ``<tool_call>`` + one JSON object + ``</tool_call>``; the object is read with a
    JSON decoder, not a pattern, so a value that itself contains ``</tool_call>`` stays whole.
    """
    decoder = json.JSONDecoder()
    calls: list[tuple[str, str]] = []
    plain: list[str] = []
    at = 0
    while (start := text.find(TOOL_CALL_OPEN, at)) >= 0:
        body = start + len(TOOL_CALL_OPEN)
        body += len(text[body:]) - len(text[body:].lstrip())
        try:
            data, end = decoder.raw_decode(text, body)
        except json.JSONDecodeError:
            break
        tail = text[end:].lstrip()
        if not (isinstance(data, dict) and isinstance(data.get("name"), str)) or not (
            tail.startswith(TOOL_CALL_CLOSE)
        ):
            break
        plain.append(text[at:start])
        calls.append((data["name"], json.dumps(data.get("arguments", {}))))
        at = len(text) - len(tail) + len(TOOL_CALL_CLOSE)
    if not calls:
        return text, []
    plain.append(text[at:])
    return "".join(plain).strip(), calls


_JSON_CALL_RE = re.compile(r'\{\s*"name"\s*:\s*"[^"]*"\s*,\s*"(arguments|parameters)"\s*:')


def looks_like_tool_call(text: str) -> bool:
    """Whether plain text holds a tool call written out instead of made (a trainer flags these).

    Either the call markup (``<tool_call>``) or a JSON object that starts with a ``name`` and its
    ``arguments`` / ``parameters``.
    """
    return TOOL_CALL_OPEN in text or bool(_JSON_CALL_RE.search(text))
