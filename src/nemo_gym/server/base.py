"""``SimpleServer``: the base of every Gym server, and the app factory they all share.

The base owns what is the same for every server: the FastAPI app and its lifespan (the pooled
outbound HTTP client is closed on shutdown), ``GET /health`` and ``GET /``, per-rollout sessions,
the exception-to-HTTP mapping, fast JSON responses and NeMo Gym's ``/ng-rollout/<id>`` path
prefix. A server implementation subclasses a role base (``nemo_gym.resources``,
``nemo_gym.agent``, ``nemo_gym.model``), adds its routes in ``setup_webserver`` and its logic in
methods; ``run_webserver()`` (see ``launch``) starts it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from nemo_gym.head.client import ServerClient
from nemo_gym.server.errors import install_error_handlers
from nemo_gym.server.limits import DEFAULT_MAX_BODY_MB, BodyLimitMiddleware
from nemo_gym.server.routing import GymRoute, RolloutPrefixMiddleware
from nemo_gym.server.sessions import SessionIdMiddleware

logger = logging.getLogger(__name__)


class BaseServerConfig(BaseModel):
    """Settings every server instance has; implementations subclass it to add their own."""

    model_config = ConfigDict(extra="allow")

    host: str = "127.0.0.1"
    port: int = 0
    entrypoint: str = ""
    name: str = Field(default="", description="The instance name (top-level config key).")
    max_request_body_mb: float = Field(
        default=DEFAULT_MAX_BODY_MB, gt=0, description="Larger request bodies are answered 413."
    )


BaseRunServerInstanceConfig = BaseServerConfig


def create_app(
    name: str,
    *,
    role: str,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    sessions: bool = True,
    title: str | None = None,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
) -> FastAPI:
    """Build a FastAPI app with Gym's shared behaviour.

    Args:
        name: the instance name, reported by ``/health`` and in error bodies.
        role: the server type, reported by ``/health``.
        on_shutdown: awaited when the app shuts down (after in-flight requests finish).
        sessions: install per-rollout session ids (``request.session``).
        title: the OpenAPI title.
        max_body_mb: request bodies above this many MiB are answered 413 (``limits.py``).
    """
    started = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    app = FastAPI(title=title or name, lifespan=lifespan)
    app.router.route_class = GymRoute
    health = {"status": "ok", "name": name, "server_type": role}

    @app.get("/health")
    async def get_health() -> dict[str, Any]:
        return {**health, "uptime_seconds": round(time.time() - started, 3)}

    @app.get("/")
    async def get_root() -> dict[str, Any]:
        return {**health, "uptime_seconds": round(time.time() - started, 3)}

    install_error_handlers(app, name)
    if sessions:  # outside the error handling, so that a 500 carries the session cookie too
        app.add_middleware(SessionIdMiddleware)
    app.add_middleware(RolloutPrefixMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(max_body_mb * 1024 * 1024))
    return app


class SimpleServer(BaseModel):
    """Base of every Gym server: its config and a client for calling other servers.

    Subclasses implement :meth:`setup_webserver`, starting from ``self.create_app()`` (the role
    bases do this) and adding routes.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    server_type: ClassVar[str] = "server"

    config: BaseServerConfig
    server_client: ServerClient

    def create_app(self) -> FastAPI:
        """A new app with Gym's shared behaviour, named after this instance."""
        return create_app(
            self.config.name or type(self).__name__,
            role=self.server_type,
            on_shutdown=self.server_client.close,
            title=type(self).__name__,
            max_body_mb=self.config.max_request_body_mb,
        )

    def setup_webserver(self) -> FastAPI:
        """Return the app with this server's routes."""
        return self.create_app()

    @classmethod
    def run_webserver(cls) -> None:
        """Start this server with the settings ``ng_run`` gave the process (blocks)."""
        from nemo_gym.server.launch import run_server

        run_server(cls)


BaseServer = SimpleServer
