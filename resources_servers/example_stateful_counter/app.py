"""example_stateful_counter: per-rollout state in the resources server.

``seed_session`` sets a counter for the rollout's session (``initial_count`` from the row), the
tools change and read it, and ``verify`` reads it: reward 1.0 when the counter ends at
``expected_count``. Every rollout has its own session id, so rollouts running at the same time
never see each other's counter. A session's state is dropped once it is verified, and the
state of a rollout that never reaches ``verify`` expires (``session_ttl_s``, ``max_sessions``:
see ``nemo_gym.authoring.SessionStore``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, PrivateAttr

from nemo_gym.authoring import SESSION_ID_KEY, SessionStore
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseSeedSessionRequest,
    BaseSeedSessionResponse,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)


class StatefulCounterConfig(BaseResourcesServerConfig):
    pass


class CounterSeedRequest(BaseSeedSessionRequest):
    initial_count: int = 0


class IncrementRequest(BaseModel):
    count: int


class CounterVerifyRequest(BaseVerifyRequest):
    expected_count: int


class CounterVerifyResponse(BaseVerifyResponse):
    expected_count: int
    final_count: int | None


class StatefulCounterServer(SimpleResourcesServer):
    config: StatefulCounterConfig
    _counters: SessionStore[int] = PrivateAttr()  # session id -> counter

    def model_post_init(self, context: Any) -> None:
        self._counters = self.session_store("counters")

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.post("/increment_counter")(self.increment_counter)
        app.post("/get_counter_value")(self.get_counter_value)
        return app

    def _session(self, request: Request) -> str:
        session = request.session[SESSION_ID_KEY]
        if session not in self._counters:
            raise HTTPException(status_code=400, detail="no counter: this session was not seeded")
        return str(session)

    async def seed_session(
        self, request: Request, body: CounterSeedRequest
    ) -> BaseSeedSessionResponse:
        self._counters.setdefault(request.session[SESSION_ID_KEY], body.initial_count)
        return BaseSeedSessionResponse()

    async def increment_counter(self, request: Request, body: IncrementRequest) -> dict[str, bool]:
        session = self._session(request)
        self._counters.set(session, self._counters[session] + body.count)
        return {"success": True}

    async def get_counter_value(self, request: Request) -> dict[str, int]:
        return {"count": self._counters[self._session(request)]}

    async def verify(self, request: Request, body: CounterVerifyRequest) -> CounterVerifyResponse:
        final = self._counters.pop(request.session[SESSION_ID_KEY], None)
        reward = 1.0 if final == body.expected_count else 0.0
        return CounterVerifyResponse(**body.model_dump(), reward=reward, final_count=final)


if __name__ == "__main__":
    StatefulCounterServer.run_webserver()
