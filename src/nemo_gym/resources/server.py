"""``SimpleResourcesServer``: the base of a resources server (tools + ``verify``).

Routes: ``POST /seed_session`` (set up per-rollout state, keyed by ``request.session``),
``POST /verify`` (score a finished rollout), ``POST /aggregate_metrics`` (metrics over a run's
scored rollouts, from the ``compute_metrics`` / ``get_key_metrics`` hooks: see
``nemo_gym.rollouts.aggregate``) and one ``POST /<tool_name>`` per tool, which the
subclass adds in ``setup_webserver``. ``GET /capabilities`` tells agents whether
``seed_session`` does anything, so they can skip the call when it does not.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from fastapi import FastAPI

from nemo_gym.config.instances import Domain
from nemo_gym.resources.schemas import (
    BaseSeedSessionRequest,
    BaseSeedSessionResponse,
    BaseVerifyRequest,
    BaseVerifyResponse,
)
from nemo_gym.rollouts.aggregate import MetricsHooks
from nemo_gym.server.base import BaseServerConfig, SimpleServer
from nemo_gym.server.routing import add_post_route


class BaseResourcesServerConfig(BaseServerConfig):
    """Settings of a resources server instance."""

    domain: Domain | None = None


class SimpleResourcesServer(MetricsHooks, SimpleServer):
    """Subclass this, add tool routes in ``setup_webserver`` and implement ``verify``; override
    ``compute_metrics`` / ``get_key_metrics`` for an environment's own metrics."""

    server_type: ClassVar[str] = "resources_servers"

    config: BaseResourcesServerConfig

    def setup_webserver(self) -> FastAPI:
        """The app with ``/seed_session``, ``/verify``, ``/aggregate_metrics`` and
        ``/capabilities``."""
        app = self.create_app()
        app.post("/seed_session")(self.seed_session)
        app.post("/verify")(self.verify)
        add_post_route(app, "/aggregate_metrics", self.aggregate_route())
        capabilities = {"seed_session": self.has_custom_seed_session()}

        @app.get("/capabilities")
        async def get_capabilities() -> dict[str, Any]:
            return capabilities

        return app

    def has_custom_seed_session(self) -> bool:
        """Whether a subclass overrides ``seed_session`` (else agents may skip calling it)."""
        return type(self).seed_session is not SimpleResourcesServer.seed_session

    async def seed_session(self, body: BaseSeedSessionRequest) -> BaseSeedSessionResponse:
        """Prepare per-rollout state from the row; the default does nothing."""
        return BaseSeedSessionResponse()

    @abstractmethod
    async def verify(self, body: BaseVerifyRequest) -> BaseVerifyResponse:
        """Score a finished rollout."""
