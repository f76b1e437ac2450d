"""Calling an LLM judge from a verifier, with a failed call kept apart from a wrong answer.

A judge call that fails (connection, timeout, an HTTP error, an answer of the wrong shape) is
not a judgement: :func:`call_judge` raises :class:`JudgeError` for it, and a ``verify`` wrapped
in :func:`judge_failsafe` answers it as a failed verification (HTTP 502, Gym's error body with
type ``JudgeError``), which the agent records as a ``verifier_error`` failure on the row instead
of a reward of 0. (NeMo Gym writes such rows to a failures file; Gym keeps them in the output
with ``_ng_status: "failed"``, and resuming retries them.) A judge answer that arrives but
cannot be parsed into a verdict is the verifier's to score.

Wrap the call, not the whole ``verify``: :func:`reraise_judge_errors` relabels every exception,
so wrapping more would file ordinary bugs as judge failures.

Neighbours: ``nemo_gym.server_utils`` (the HTTP helpers), ``nemo_gym.server.errors``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.responses import Response

from nemo_gym.server.client import ServerClient
from nemo_gym.server.errors import error_body
from nemo_gym.server_utils import get_response_json, raise_for_status

__all__ = ["JudgeError", "call_judge", "judge_failsafe", "reraise_judge_errors"]

logger = logging.getLogger(__name__)
ResponseT = TypeVar("ResponseT", bound=BaseModel)


class JudgeError(Exception):
    """A judge call failed (the message says how)."""


async def reraise_judge_errors(coro: Awaitable[Any]) -> Any:
    """Await a judge call; any exception it raises becomes a :class:`JudgeError`."""
    try:
        return await coro
    except JudgeError:
        raise
    except Exception as exc:
        raise JudgeError(f"{type(exc).__name__}: {exc}") from exc


async def call_judge(
    server_client: ServerClient,
    *,
    server_name: str,
    url_path: str,
    json: Any,
    response_model: type[ResponseT],
) -> ResponseT:
    """POST ``json`` to the judge model server ``server_name`` and parse its answer.

    ``url_path`` is ``/v1/responses`` or ``/v1/chat/completions``, with the matching
    ``response_model``. The status is checked before parsing, so an HTTP error is reported as
    such rather than as the error body failing validation.

    Raises:
        JudgeError: the call failed or the answer is not a ``response_model``.
    """

    async def call() -> ResponseT:
        response = await server_client.post(server_name, url_path, json=json)
        await raise_for_status(response)
        return response_model.model_validate(await get_response_json(response))

    result: ResponseT = await reraise_judge_errors(call())
    return result


def judge_failsafe(verify_fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wrap a ``verify`` so that a :class:`JudgeError` answers as a failed verification.

    The wrapper keeps ``verify_fn``'s signature, so FastAPI injects the same parameters.
    """

    @functools.wraps(verify_fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await verify_fn(*args, **kwargs)
        except JudgeError as exc:
            logger.warning("verify: the judge call failed: %s", exc)
            body = error_body("JudgeError", f"the judge call failed: {exc}", "verify")
            return Response(body, status_code=502, media_type="application/json")

    return wrapper
