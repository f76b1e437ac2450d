"""The one place where exceptions become HTTP responses, for every Gym server.

* An unhandled exception in a route becomes ``500 {"error": {"type", "message", "server"}}`` and
  is logged with its traceback. For a tool, the agent passes this body back to the model as the
  tool's output; for ``/verify`` the agent records the rollout as a verifier failure.
* ``HTTPException`` answers FastAPI's own ``{"detail": ...}`` body with its status and headers,
  as on NeMo Gym: a tool that raises ``HTTPException(404, "no such file")`` reads to the model
  exactly as it does there.
* A request that fails validation becomes ``422`` with pydantic's errors (which name the fields);
  the body is logged at debug level only, since it may hold prompts.
* An upstream that failed (an ``UpstreamError``: after its bounded retries, a timeout or no
  connection) is ``504`` for a timeout, else ``502``; an upstream's error answer keeps its 4xx
  status (the caller's request was wrong) and is ``502`` otherwise. Both answer
  ``{"detail": ...}`` naming the upstream, with known secrets and key-like tokens redacted
  (upstreams sometimes echo the key they were sent). Routes that call an upstream raise
  :func:`upstream_failure` / :func:`upstream_answer_error`; an ``UpstreamError`` that escapes a
  route is mapped the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nemo_gym.config.secrets import redact_upstream_text
from nemo_gym.core.errors import UpstreamError

logger = logging.getLogger(__name__)

#: How much of an upstream's error body an answer quotes.
MAX_QUOTED_BODY = 2000


def upstream_status(exc: UpstreamError) -> int:
    """The HTTP status that answers a failed upstream call: 504 for a timeout, else 502."""
    return 504 if exc.kind == "timeout" else 502


def upstream_failure(
    exc: UpstreamError, *, source: str = "", secrets: Iterable[str] = ()
) -> HTTPException:
    """The answer to an upstream call that failed (see the module docstring).

    Args:
        exc: the failure.
        source: prefixed to the message (e.g. ``"resources server 'weather'"``).
        secrets: values to redact from the message (the key sent upstream).
    """
    message = f"{source}: {exc}" if source else str(exc)
    return HTTPException(upstream_status(exc), redact_upstream_text(message, secrets))


def upstream_answer_error(
    status: int, body: bytes, *, source: str, secrets: Iterable[str] = ()
) -> HTTPException:
    """The answer to an upstream's error answer: its 4xx status, else 502, quoting the start
    of its body with secrets redacted.

    Args:
        status: the upstream's HTTP status.
        body: the upstream's body.
        source: names the upstream (e.g. its URL).
        secrets: values to redact (the key sent upstream).
    """
    text = body[:MAX_QUOTED_BODY].decode(errors="replace")
    message = f"{source} answered HTTP {status}: {text}"
    return HTTPException(
        status if 400 <= status < 500 else 502, redact_upstream_text(message, secrets)
    )


def error_body(kind: str, message: str, server: str, **extra: Any) -> bytes:
    """Serialise Gym's error body."""
    return orjson.dumps({"error": {"type": kind, "message": message, "server": server, **extra}})


def install_error_handlers(app: FastAPI, server_name: str) -> None:
    """Register Gym's exception handlers on ``app``."""

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        logger.debug(
            "%s %s: HTTP %d: %s", request.method, request.url.path, exc.status_code, exc.detail
        )
        return await http_exception_handler(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = orjson.loads(orjson.dumps(exc.errors(), default=str))
        logger.warning(
            "%s %s: invalid request: %s",
            request.method,
            request.url.path,
            [(".".join(map(str, e["loc"])), e["msg"]) for e in errors][:5],
        )
        body = orjson.dumps(
            {
                "detail": errors,
                "error": {
                    "type": "RequestValidationError",
                    "server": server_name,
                    "message": "; ".join(
                        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5]
                    ),
                },
            }
        )
        return Response(body, status_code=422, media_type="application/json")

    async def on_upstream_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UpstreamError)
        return await on_http_exception(request, upstream_failure(exc))

    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(UpstreamError, on_upstream_error)
    app.add_middleware(UnhandledErrorMiddleware, server_name=server_name)


class UnhandledErrorMiddleware:
    """Turn an exception escaping a route into Gym's 500 body, logged once with its traceback.

    Sits inside Starlette's ``ServerErrorMiddleware`` so that the exception is answered here and
    not re-raised to uvicorn (which would log it a second time).
    """

    def __init__(self, app: ASGIApp, server_name: str) -> None:
        self.app = app
        self.server_name = server_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            logger.exception(
                "%s %s raised %s in server %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                self.server_name,
            )
            if started:
                raise
            body = error_body(type(exc).__name__, str(exc) or repr(exc), self.server_name)
            await Response(body, status_code=500, media_type="application/json")(
                scope, receive, send
            )
