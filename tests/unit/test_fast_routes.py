"""GymRoute (server.routing): a route without an explicit ``response_model`` returns its
pydantic model as is (serialised once, by the model); one with ``response_model`` is filtered by
FastAPI as usual."""

from __future__ import annotations

from pydantic import BaseModel

from nemo_gym.server.base import create_app
from tests.helpers import InProcess


class Answer(BaseModel):
    text: str


class Detailed(Answer):
    detail: str


async def test_only_an_explicit_response_model_filters_the_answer() -> None:
    app = create_app("r", role="resources_servers")

    @app.get("/fast")
    async def fast() -> Answer:
        return Detailed(text="a", detail="kept")

    @app.get("/filtered", response_model=Answer)
    async def filtered() -> Answer:
        return Detailed(text="a", detail="dropped")

    setup = InProcess()
    setup.add("r", "resources_servers", app)
    fast_answer = await setup.client.get("r", "/fast")
    filtered_answer = await setup.client.get("r", "/filtered")
    await setup.client.close()
    assert fast_answer.json_sync() == {"text": "a", "detail": "kept"}
    assert filtered_answer.json_sync() == {"text": "a"}
