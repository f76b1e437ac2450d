"""Token ids and log-probabilities from an OpenAI-compatible (vLLM) chat completion.

vLLM reports them in two ways, both read here: ``return_token_ids`` (vLLM >= 0.10.2) puts
``prompt_token_ids`` on the completion and ``token_ids`` on each choice; ``logprobs`` with
``return_tokens_as_token_ids`` writes each sampled token as ``"token_id:<id>"`` with its
log-probability. :func:`drift` checks that a turn's prompt starts with the exact tokens of the
previous turn (its prompt and what was sampled), which is what keeps multi-turn training data
on-policy; a chat template that re-tokenises earlier turns differently breaks it.
"""

from __future__ import annotations

from typing import Any


def sampled_tokens(choice: dict[str, Any]) -> tuple[list[int], list[float]] | None:
    """``(generation_token_ids, generation_log_probs)`` of a choice, or None if absent."""
    content = ((choice.get("logprobs") or {}).get("content")) or []
    log_probs = [float(c.get("logprob", 0.0)) for c in content]
    ids = choice.get("token_ids")
    if ids is None and content:
        try:
            ids = [int(str(c["token"]).removeprefix("token_id:")) for c in content]
        except (KeyError, ValueError):
            return None
    if ids is None:
        return None
    if len(log_probs) != len(ids):
        return None
    return [int(i) for i in ids], log_probs


def previous_turn_tokens(messages: list[dict[str, Any]]) -> list[int] | None:
    """The tokens a new prompt must start with: the last trained turn's prompt + sample."""
    for message in reversed(messages):
        if message.get("role") == "assistant" and "generation_token_ids" in message:
            return list(message.get("prompt_token_ids") or []) + list(
                message["generation_token_ids"]
            )
    return None


def drift(expected_prefix: list[int] | None, prompt_ids: list[int]) -> dict[str, Any] | None:
    """Describe where ``prompt_ids`` stops extending ``expected_prefix`` (None: it does)."""
    if not expected_prefix:
        return None
    for i, token in enumerate(expected_prefix):
        if i >= len(prompt_ids):
            return {
                "position": i,
                "expected": token,
                "got": None,
                "detail": "the prompt is shorter than the previous turn",
            }
        if prompt_ids[i] != token:
            return {
                "position": i,
                "expected": token,
                "got": prompt_ids[i],
                "detail": "the prompt re-tokenises an earlier turn differently",
            }
    return None
