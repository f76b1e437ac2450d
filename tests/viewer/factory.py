"""Rollout rows in Gym's output layout (``nemo_gym.rollouts.records``) for the viewer's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "search_web",
        "description": "Search the web.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
]


def row(
    task: int,
    repeat: int = 0,
    *,
    reward: float | None = 1.0,
    status: str = "completed",
    kind: str | None = None,
    question: str | None = None,
    answer: str = "It is sunny.",
    tool: str | None = "get_weather",
    args: str = '{"city": "Paris"}',
    tool_output: str = '{"weather": "sunny"}',
    reasoning: str | None = None,
    tokens: bool = False,
    steps: int = 2,
    **extra: Any,
) -> dict[str, Any]:
    """One row; a failed row gets ``reward: null`` and an ``_ng_failure`` of ``kind``."""
    output: list[dict[str, Any]] = []
    if reasoning is not None:
        output.append(
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": reasoning}],
            }
        )
    if tool is not None:
        output.append(
            {"type": "function_call", "call_id": f"call_{task}", "name": tool, "arguments": args}
        )
        output.append(
            {"type": "function_call_output", "call_id": f"call_{task}", "output": tool_output}
        )
    message: dict[str, Any] = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [{"type": "output_text", "text": answer, "annotations": []}],
    }
    if tokens:
        message |= {
            "prompt_token_ids": [1, 2, 3, 4, 5],
            "generation_token_ids": [101, 102, 103],
            "generation_log_probs": [-0.01, -1.5, -3.2],
        }
    output.append(message)
    failed = status == "failed"
    failure = None
    if failed or status == "truncated":
        failure = {
            "kind": kind or ("model_error" if failed else "max_steps"),
            "message": "boom",
            "step": 1,
        }
    return {
        "responses_create_params": {
            "input": [
                {"role": "system", "content": "You are a weather bot."},
                {"role": "user", "content": question or f"What is the weather for task {task}?"},
            ],
            "tools": TOOLS,
            "temperature": 0.7,
        },
        "_ng_task_index": task,
        "_ng_repeat_index": repeat,
        "response": {"id": f"resp_{task}_{repeat}", "output": output},
        "reward": None if failed else reward,
        "_ng_schema_version": 1,
        "_ng_status": status,
        "_ng_failure": failure,
        "_ng_num_steps": steps,
        "_ng_elapsed_s": 0.5 + task,
        **extra,
    }


def write_jsonl(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    """Write rows (a str is written as the raw line, e.g. a malformed one)."""
    with path.open("w") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


def sample_rows() -> list[dict[str, Any] | str]:
    """Three tasks x 2 repeats, a failed row, a truncated row, tokens, reasoning, XSS, a bad line.

    Rows (line numbers): 1-2 task 0 (rewards 1, 1), 3-4 task 1 (1, 0), 5 task 2 failed
    (verifier_error), 6 task 2 truncated (reward 0.5), 7 malformed, 8 task 3 with the XSS text.
    """
    return [
        row(0, 0, reward=1.0, question="What is the weather in Paris?", tokens=True),
        row(
            0,
            1,
            reward=1.0,
            question="What is the weather in Paris?",
            reasoning="Think about Paris.",
        ),
        row(
            1,
            0,
            reward=1.0,
            question="Find llamas in Peru",
            tool="search_web",
            args='{"query": "llamas"}',
        ),
        row(
            1,
            1,
            reward=0.0,
            question="Find llamas in Peru",
            tool="search_web",
            answer="No idea, sorry.",
        ),
        row(2, 0, status="failed", kind="verifier_error", question="Is Oslo cold?"),
        row(2, 1, reward=0.5, status="truncated", question="Is Oslo cold?", steps=8),
        '{"responses_create_params": {"input": [',
        row(
            3,
            0,
            reward=0.25,
            question=f"Echo this: {XSS}",
            answer=f"Echo: {XSS}",
            args=json.dumps({"city": XSS}),
            tool_output=XSS,
        ),
    ]
