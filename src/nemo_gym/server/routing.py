"""A FastAPI route class that serialises pydantic return values in one pass.

FastAPI's default path for ``-> SomeModel`` endpoints dumps the model to a dict, validates it
again against the response model and serialises it in Python; for the large Responses objects on
the rollout hot path that costs more than everything else the route does. When an endpoint
declares no explicit ``response_model`` we answer with ``model_dump_json()`` instead (pydantic's
Rust serialiser). An explicit ``response_model=`` keeps FastAPI's behaviour.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response


class JSONResponseBytes(Response):
    """An already serialised JSON body."""

    media_type = "application/json"


def _fast_endpoint(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if not inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            result = endpoint(*args, **kwargs)
            if isinstance(result, BaseModel):
                return JSONResponseBytes(result.model_dump_json())
            return result

        return sync_wrapper

    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await endpoint(*args, **kwargs)
        if isinstance(result, BaseModel):
            return JSONResponseBytes(result.model_dump_json())
        return result

    return wrapper


class GymRoute(APIRoute):
    """``APIRoute`` that serialises returned pydantic models directly (see module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        response_model = kwargs.get("response_model")
        if response_model is None or isinstance(response_model, DefaultPlaceholder):
            endpoint = _fast_endpoint(endpoint)
            kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)
