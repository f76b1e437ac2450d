"""A test environment: the weather tool, and a record of which session called which route.

``GET /seen`` answers ``{"pid": ..., "calls": {session_id: [route, ...]}}``, so a test can count
the calls each replica served and check that every call of one rollout reached one replica.
"""

from __future__ import annotations

import collections
import os

from fastapi import FastAPI, Request
from pydantic import BaseModel

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseSeedSessionRequest,
    BaseSeedSessionResponse,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.server.sessions import SESSION_ID_KEY


class CountingConfig(BaseResourcesServerConfig):
    pass


class CityRequest(BaseModel):
    city: str


class SeenResponse(BaseModel):
    pid: int
    calls: dict[str, list[str]]


#: session id -> the routes it called, in order (this process's record)
CALLS: dict[str, list[str]] = collections.defaultdict(list)


class CountingServer(SimpleResourcesServer):
    config: CountingConfig

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.post("/get_weather")(self.get_weather)
        app.get("/seen")(self.seen)
        return app

    def _note(self, request: Request, route: str) -> None:
        CALLS[request.session[SESSION_ID_KEY]].append(route)

    async def seed_session(
        self, request: Request, body: BaseSeedSessionRequest
    ) -> BaseSeedSessionResponse:
        self._note(request, "seed_session")
        return BaseSeedSessionResponse()

    async def get_weather(self, request: Request, body: CityRequest) -> dict[str, str]:
        self._note(request, "get_weather")
        return {"city": body.city, "weather_description": f"The weather in {body.city} is cold."}

    async def verify(self, request: Request, body: BaseVerifyRequest) -> BaseVerifyResponse:
        self._note(request, "verify")
        return BaseVerifyResponse(**body.model_dump(), reward=1.0)

    async def seen(self) -> SeenResponse:
        return SeenResponse(pid=os.getpid(), calls=dict(CALLS))


if __name__ == "__main__":
    CountingServer.run_webserver()
