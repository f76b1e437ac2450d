"""Token usage of a Responses API answer, and its sum over the model calls of a trajectory.

A count a server did not report (``cached_tokens`` or ``reasoning_tokens`` of ``None``) stays
unknown in a sum rather than being counted as zero.

Neighbours: ``responses`` (``NeMoGymResponse.usage``); ``nemo_gym.openai_utils`` re-exports.
"""

from __future__ import annotations

from openai.types.responses import ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

__all__ = [
    "NeMoGymResponseInputTokensDetails",
    "NeMoGymResponseOutputTokensDetails",
    "NeMoGymResponseUsage",
    "accumulate_response_usage",
]


class NeMoGymResponseInputTokensDetails(InputTokensDetails):
    """Input token details; either count may be unknown (``cache_write_tokens`` by default)."""

    cached_tokens: int | None  # type: ignore[assignment]
    cache_write_tokens: int | None = None  # type: ignore[assignment]


class NeMoGymResponseOutputTokensDetails(OutputTokensDetails):
    """Output token details; ``reasoning_tokens`` may be unknown."""

    reasoning_tokens: int | None  # type: ignore[assignment]


class NeMoGymResponseUsage(ResponseUsage):
    """Token usage of one answer (or a sum of several)."""

    input_tokens_details: NeMoGymResponseInputTokensDetails
    output_tokens_details: NeMoGymResponseOutputTokensDetails

    @classmethod
    def sum_from_list(cls, usages: list[NeMoGymResponseUsage]) -> NeMoGymResponseUsage:
        """The sum of ``usages`` (zero for an empty list)."""
        total = cls(
            input_tokens=0,
            input_tokens_details=NeMoGymResponseInputTokensDetails(cached_tokens=0),
            output_tokens=0,
            output_tokens_details=NeMoGymResponseOutputTokensDetails(reasoning_tokens=0),
            total_tokens=0,
        )
        for usage in usages:
            total = accumulate_response_usage(total, usage) or total
        return total


def _add(left: int | None, right: int | None) -> int | None:
    return None if left is None or right is None else left + right


def accumulate_response_usage(
    total: NeMoGymResponseUsage | None, additional: NeMoGymResponseUsage | None
) -> NeMoGymResponseUsage | None:
    """``total + additional`` as a new object (either may be ``None``: the other is returned)."""
    if additional is None:
        return total
    if total is None:
        return additional.model_copy(deep=True)
    result = total.model_copy(deep=True)
    result.input_tokens += additional.input_tokens
    result.output_tokens += additional.output_tokens
    result.total_tokens += additional.total_tokens
    if result.input_tokens_details is not None and additional.input_tokens_details is not None:
        mine, theirs = result.input_tokens_details, additional.input_tokens_details
        mine.cached_tokens = _add(mine.cached_tokens, theirs.cached_tokens)
        mine.cache_write_tokens = _add(mine.cache_write_tokens, theirs.cache_write_tokens)
    if result.output_tokens_details is not None and additional.output_tokens_details is not None:
        result.output_tokens_details.reasoning_tokens = _add(
            result.output_tokens_details.reasoning_tokens,
            additional.output_tokens_details.reasoning_tokens,
        )
    return result
