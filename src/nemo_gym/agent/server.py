"""``SimpleResponsesAPIAgent``: the base of an agent server.

Routes: ``POST /v1/responses`` (one full multi-step trajectory for the given create params),
``POST /run`` (one rollout: seed the session, run the trajectory, verify, return the row),
``POST /run_batch`` (many ``/run`` rows over one connection, each answer streamed as it ends;
``server.run_batch``) and ``POST /aggregate_metrics`` (metrics over a run's scored rollouts: by
default from this agent's own ``compute_metrics`` / ``get_key_metrics`` hooks, see
``nemo_gym.rollouts.aggregate``; an agent with a resources server forwards it there, as
``simple_agent`` does).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response
from starlette.routing import Route

from nemo_gym.protocol.responses import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming
from nemo_gym.resources.schemas import BaseVerifyResponse
from nemo_gym.rollouts.aggregate import MetricsHooks
from nemo_gym.server.admission import RowAdmission
from nemo_gym.server.base import BaseServerConfig, SimpleServer
from nemo_gym.server.routing import add_post_route
from nemo_gym.server.run_batch import RUN_BATCH_PATH, RunBatchEndpoint


class BaseResponsesAPIAgentConfig(BaseServerConfig):
    """Settings of an agent instance."""


class BaseRunRowRequest(BaseModel):
    """A ``/run`` body: the dataset row (extra fields are kept)."""

    model_config = ConfigDict(extra="allow")

    responses_create_params: dict[str, Any]


class SimpleResponsesAPIAgent(MetricsHooks, SimpleServer):
    """Subclass this and implement ``responses`` and ``run``."""

    server_type: ClassVar[str] = "responses_api_agents"

    config: BaseResponsesAPIAgentConfig

    def setup_webserver(self) -> FastAPI:
        """The app with ``/v1/responses``, ``/run``, ``/run_batch`` (many ``/run`` rows on one
        connection, see ``server.run_batch``) and ``/aggregate_metrics``."""
        app = self.create_app()
        add_post_route(app, "/v1/responses", self.responses)
        add_post_route(app, "/run", self.run)
        # rows start while the agent's own outbound calls are not queueing (server.admission)
        admission = RowAdmission(self.server_client.http.slots)
        endpoint = RunBatchEndpoint(app, admission=admission)
        app.router.routes.append(Route(RUN_BATCH_PATH, endpoint, methods=["POST"]))
        add_post_route(app, "/aggregate_metrics", self.aggregate_route())
        return app

    @abstractmethod
    async def responses(
        self, body: NeMoGymResponseCreateParamsNonStreaming
    ) -> NeMoGymResponse | Response:
        """Run one multi-step trajectory and return the final response.

        FastAPI reads the override's signature: it may declare the body as here (NeMo Gym's
        agents do, ``= Body()``), or take only the ``Request`` and answer a ``Response`` (the
        fast path of ``add_post_route``; validate with ``validated_json``), as ``simple_agent``
        does.
        """

    @abstractmethod
    async def run(self, body: BaseRunRowRequest) -> BaseVerifyResponse | Response:
        """Run one rollout (seed, trajectory, verify) and return its row; the override's
        signature may differ as for :meth:`responses`."""
