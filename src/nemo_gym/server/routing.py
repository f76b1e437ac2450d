"""A FastAPI route class that serialises pydantic return values in one pass.

FastAPI's default path for ``-> SomeModel`` endpoints dumps the model to a dict, validates it
again against the response model and serialises it in Python; for the large Responses objects on
the rollout hot path that costs more than everything else the route does. When an endpoint
declares no explicit ``response_model`` we answer with ``model_dump_json()`` instead (pydantic's
Rust serialiser), keeping the headers and status an endpoint set on an injected ``Response``
(NeMo Gym's agents copy cookies onto theirs). An explicit ``response_model=`` keeps FastAPI's
behaviour.

:class:`RolloutPrefixMiddleware` routes NeMo Gym's per-rollout paths
(``/ng-rollout/<id>/v1/responses``) to the route they name.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nemo_gym.core import jsonbytes

#: A rollout may address a server under ``/ng-rollout/<rollout id>[/training-token-capture]``
#: (NeMo Gym's per-rollout model URLs); the prefix is removed before routing.
ROLLOUT_PATH_PREFIX = "ng-rollout"
TOKEN_CAPTURE_PATH_SEGMENT = "training-token-capture"
_ROLLOUT_PREFIX = re.compile(
    rf"^/{ROLLOUT_PATH_PREFIX}/(?P<rollout_id>[^/]+)(?:/{TOKEN_CAPTURE_PATH_SEGMENT})?(?=/|$)"
)


class JSONResponseBytes(Response):
    """An already serialised JSON body."""

    media_type = "application/json"


def _response_params(endpoint: Callable[..., Any]) -> list[str]:
    """Names of the endpoint's parameters that FastAPI fills with the outgoing ``Response``."""
    names = []
    for name, param in inspect.signature(endpoint).parameters.items():
        annotation = param.annotation
        if isinstance(annotation, str):
            if annotation.rsplit(".", 1)[-1] == "Response":
                names.append(name)
        elif isinstance(annotation, type) and issubclass(annotation, Response):
            names.append(name)
    return names


def _answer(result: BaseModel, kwargs: dict[str, Any], response_params: list[str]) -> Response:
    """``result`` as JSON, with the headers (cookies) and status the endpoint set on its
    injected ``Response`` (FastAPI applies those only to values it serialises itself)."""
    out = JSONResponseBytes(result.model_dump_json(by_alias=True))  # as FastAPI answers
    for name in response_params:
        injected = kwargs.get(name)
        if isinstance(injected, Response):
            out.raw_headers.extend(
                (k, v) for k, v in injected.raw_headers if k != b"content-length"
            )
            if injected.status_code:
                out.status_code = injected.status_code
    return out


def _fast_endpoint(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    response_params = _response_params(endpoint)
    if not inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            result = endpoint(*args, **kwargs)
            if isinstance(result, BaseModel):
                return _answer(result, kwargs, response_params)
            return result

        return sync_wrapper

    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await endpoint(*args, **kwargs)
        if isinstance(result, BaseModel):
            return _answer(result, kwargs, response_params)
        return result

    return wrapper


class OrjsonRequest(Request):
    """A request whose JSON body is parsed by ``jsonbytes.loads`` (orjson, in bounded memory for
    large bodies; its ``orjson.JSONDecodeError`` is a ``json.JSONDecodeError``, so FastAPI's
    invalid-JSON answer is unchanged)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = jsonbytes.loads(await self.body())
        return self._json


#: What FastAPI passes as ``response_model`` when a route does not set one (its public default;
#: FastAPI's placeholders compare equal by value).
_NOT_GIVEN = inspect.signature(APIRoute.__init__).parameters["response_model"].default


class GymRoute(APIRoute):
    """``APIRoute`` that parses JSON with orjson and serialises returned pydantic models
    directly (see module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        response_model = kwargs.get("response_model")
        if response_model is None or response_model == _NOT_GIVEN:
            endpoint = _fast_endpoint(endpoint)
            kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def gym_handler(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return gym_handler


def add_post_route(app: FastAPI, path: str, endpoint: Callable[..., Any]) -> None:
    """Register a POST route, skipping FastAPI's request handling when it has nothing to do.

    An endpoint that takes only the ``Request`` (the hot proxy routes: an agent's ``/run``, a
    model server's ``/v1/responses``) is mounted as a plain Starlette route, which costs half
    as much per request (no dependency solving); any other signature gets FastAPI's route.
    """
    params = list(inspect.signature(endpoint).parameters.values())
    if len(params) == 1 and params[0].annotation in (Request, "Request"):
        fast = _fast_endpoint(endpoint)
        app.router.routes.append(Route(path, fast, methods=["POST"]))
    else:
        app.post(path)(endpoint)


class RolloutPrefixMiddleware:
    """Serve ``/ng-rollout/<id>[/training-token-capture]/<path>`` as ``/<path>``.

    The rollout id is kept in ``request.state.rollout_id``. Gym does not capture model calls per
    rollout; the prefix is accepted so that code addressing a model through it is routed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(f"/{ROLLOUT_PATH_PREFIX}/"):
            match = _ROLLOUT_PREFIX.match(scope["path"])
            if match is not None:
                path = scope["path"][match.end() :] or "/"
                state = {**scope.get("state", {}), "rollout_id": match["rollout_id"]}
                scope = {**scope, "path": path, "raw_path": path.encode(), "state": state}
        await self.app(scope, receive, send)
