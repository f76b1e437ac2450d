"""``SimpleServer``: the base of every Gym server, and the app factory they all share.

The base owns what is the same for every server: the FastAPI app and its lifespan, ``GET
/health`` and ``GET /``, per-rollout sessions, the exception-to-HTTP mapping, fast JSON responses
and NeMo Gym's ``/ng-rollout/<id>`` path prefix. A server implementation subclasses a role base
(``nemo_gym.resources``, ``nemo_gym.agent``, ``nemo_gym.model``), adds its routes in
``setup_webserver``, its logic in methods, and what it must do once per process in two hooks:

* ``async def on_startup(self)``: awaited before the server answers any request (``/health``
  included), e.g. to load a model. If it raises, the server logs an error naming itself and the
  process exits with a non-zero code, which ``ng_run`` reports;
* ``async def on_shutdown(self)``: awaited after the requests in flight have finished.

While it serves, free heap memory goes back to the system (``core.memory``). The pooled
outbound HTTP client is closed by the base after ``on_shutdown`` (or after a failed
``on_startup``). ``session_store()`` gives a per-rollout ``SessionStore`` with this server's
``session_ttl_s`` and ``max_sessions``. ``run_webserver()`` (see ``launch``) starts a server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from nemo_gym.core.errors import GymError
from nemo_gym.core.memory import release_periodically
from nemo_gym.server.client import ServerClient
from nemo_gym.server.errors import install_error_handlers
from nemo_gym.server.limits import DEFAULT_MAX_BODY_MB, BodyLimitMiddleware
from nemo_gym.server.routing import GymRoute, RolloutPrefixMiddleware
from nemo_gym.server.session_store import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_TTL_S,
    SessionStore,
)
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
    session_ttl_s: float = Field(
        default=DEFAULT_SESSION_TTL_S,
        gt=0,
        description="Per-rollout state unused this many seconds is dropped (session_store()).",
    )
    max_sessions: int = Field(
        default=DEFAULT_MAX_SESSIONS,
        ge=1,
        description="Most rollouts whose state a session store keeps (least recently used go).",
    )


class StartupError(GymError):
    """A server's ``on_startup`` hook failed; the message names the server."""


BaseRunServerInstanceConfig = BaseServerConfig


def create_app(
    name: str,
    *,
    role: str,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    sessions: bool = True,
    title: str | None = None,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    upstream: Callable[[], BaseModel] | None = None,
) -> FastAPI:
    """Build a FastAPI app with Gym's shared behaviour.

    Args:
        name: the instance name, reported by ``/health`` and in error bodies.
        role: the server type, reported by ``/health``.
        on_startup: awaited before the app serves; an exception becomes a
            :class:`StartupError` naming the server (uvicorn then exits).
        on_shutdown: awaited when the app shuts down (after in-flight requests finish).
        sessions: install per-rollout session ids (``request.session``).
        title: the OpenAPI title.
        max_body_mb: request bodies above this many MiB are answered 413 (``limits.py``).
        upstream: the server's upstream answer counts, reported by ``/health`` as ``upstream``
            (``retry_budget.UpstreamCounts``; the collector's concurrency governor reads them).
    """
    started = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            try:
                await on_startup()
            except Exception as exc:
                logger.error(
                    "server %s did not start: its on_startup raised %s: %s",
                    name,
                    type(exc).__name__,
                    exc,
                )
                raise StartupError(
                    f"server {name!r}: on_startup raised {type(exc).__name__}: {exc}"
                ) from exc
        releaser = asyncio.create_task(release_periodically())  # see core.memory
        try:
            yield
        finally:
            releaser.cancel()
        if on_shutdown is not None:
            await on_shutdown()

    app = FastAPI(title=title or name, lifespan=lifespan)
    app.router.route_class = GymRoute
    health = {"status": "ok", "name": name, "server_type": role}

    @app.get("/health")
    async def get_health() -> dict[str, Any]:
        extra = {"upstream": upstream().model_dump()} if upstream is not None else {}
        return {**health, "uptime_seconds": round(time.time() - started, 3), **extra}

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
    bases do this) and adding routes, and override :meth:`on_startup` / :meth:`on_shutdown` for
    what must happen once per process.
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
            on_startup=self._start,
            on_shutdown=self._stop,
            title=type(self).__name__,
            max_body_mb=self.config.max_request_body_mb,
            upstream=lambda: self.server_client.http.budget.counts,
        )

    def setup_webserver(self) -> FastAPI:
        """Return the app with this server's routes."""
        return self.create_app()

    async def on_startup(self) -> None:
        """Awaited once before the server serves (load a model, open a pool); does nothing by
        default. Raising stops the server with an error naming it."""

    async def on_shutdown(self) -> None:
        """Awaited once after the requests in flight finished; does nothing by default."""

    async def _start(self) -> None:
        try:
            await self.on_startup()
        except BaseException:
            await self.server_client.close()
            raise

    async def _stop(self) -> None:
        try:
            await self.on_shutdown()
        finally:
            await self.server_client.close()

    def session_store(self, what: str) -> SessionStore[Any]:
        """A new per-rollout store with this server's ``session_ttl_s`` and ``max_sessions``,
        logged as ``<server name>.<what>``; annotate it with its value type::

            self._counters: SessionStore[int] = self.session_store("counters")
        """
        return SessionStore(
            ttl_s=self.config.session_ttl_s,
            max_entries=self.config.max_sessions,
            name=f"{self.config.name or type(self).__name__}.{what}",
        )

    @classmethod
    def run_webserver(cls) -> None:
        """Start this server with the settings ``ng_run`` gave the process (blocks)."""
        from nemo_gym.server.launch import run_server

        run_server(cls)


BaseServer = SimpleServer
