"""What the index keeps of one rollout row: status, reward, counts, tools, a preview, search text.

The row layout is ``nemo_gym.rollouts.row``, and so is the status rule (:func:`row_status`):
rows written by other tools (no ``_ng_`` keys) are read too, completed with a numeric ``reward``
and failed (kind ``no_reward``) without one. ``index`` calls :func:`summarize` once per line
and stores the result in columns.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import orjson

from nemo_gym.rollouts.row import FAILURE_KEY, RolloutStatus, numeric_reward, row_status

PREVIEW_CHARS = 160


@dataclass(slots=True)
class RowSummary:
    status: RolloutStatus
    failure_kind: str
    reward: float  # NaN when not scored
    steps: int  # -1 when unknown
    tokens: int  # generated tokens; -1 when unknown
    elapsed_s: float  # NaN when unknown
    task_index: int  # -1 when absent
    repeat_index: int
    input_hash: int
    tools: list[str]
    preview: str
    search_text: str
    has_token_fields: bool


def _text_of(content: Any) -> str:
    """The text of a message ``content``: a string, or the text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text") or part.get("refusal")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


def _item_texts(item: dict[str, Any], out: list[str]) -> None:
    """Append the searchable text of one input or output item."""
    kind = item.get("type")
    if kind == "function_call":
        out.append(str(item.get("name") or ""))
        out.append(str(item.get("arguments") or ""))
    elif kind == "function_call_output":
        output = item.get("output")
        out.append(output if isinstance(output, str) else _text_of(output))
    elif kind == "reasoning":
        for key in ("summary", "content"):
            out.append(_text_of(item.get(key)))
    else:
        out.append(_text_of(item.get("content")))


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def _integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _input_hash(items: Any) -> int:
    digest = hashlib.blake2b(orjson.dumps(items, option=orjson.OPT_SORT_KEYS), digest_size=6)
    return int.from_bytes(digest.digest(), "big")


def summarize(row: dict[str, Any]) -> RowSummary:
    """Summarise one parsed row (never raises on odd shapes: missing parts become unknown)."""
    status = row_status(row)
    reward = numeric_reward(row)
    if status == "failed" or reward is None:
        reward = math.nan
    failure = row.get(FAILURE_KEY)
    kind = ""
    texts: list[str] = []
    if isinstance(failure, dict):
        kind = str(failure.get("kind") or "")
        texts.append(str(failure.get("message") or ""))
    elif status == "failed":
        kind = "no_reward"

    params = row.get("responses_create_params")
    params = params if isinstance(params, dict) else {}
    items = params.get("input")
    preview = ""
    if isinstance(items, str):
        texts.append(items)
        preview = items
    elif isinstance(items, list):
        if isinstance(params.get("instructions"), str):
            texts.append(params["instructions"])
        for item in items:
            if isinstance(item, dict):
                _item_texts(item, texts)
                if item.get("role") == "user":
                    preview = _text_of(item.get("content")) or preview

    tools: list[str] = []
    generated = -1
    has_tokens = False
    response = row.get("response")
    output = response.get("output") if isinstance(response, dict) else None
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict):
            continue
        _item_texts(item, texts)
        if item.get("type") == "function_call":
            name = str(item.get("name") or "")
            if name not in tools:
                tools.append(name)
        ids = item.get("generation_token_ids")
        if isinstance(ids, list):
            has_tokens = True
            generated = max(generated, 0) + len(ids)
    if generated < 0 and isinstance(response, dict):
        usage = response.get("usage")
        if isinstance(usage, dict):
            generated = _integer(usage.get("output_tokens"))

    return RowSummary(
        status=status,
        failure_kind=kind,
        reward=reward,
        steps=_integer(row.get("_ng_num_steps")),
        tokens=generated,
        elapsed_s=_number(row.get("_ng_elapsed_s"), math.nan),
        task_index=_integer(row.get("_ng_task_index")),
        repeat_index=_integer(row.get("_ng_repeat_index")),
        input_hash=_input_hash(items),
        tools=tools,
        preview=" ".join(preview[: PREVIEW_CHARS * 2].split())[:PREVIEW_CHARS],
        search_text="\n".join(t for t in texts if t).lower(),
        has_token_fields=has_tokens,
    )
