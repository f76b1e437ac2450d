"""weather_condition: look up a city's weather with ``get_weather`` and report its condition.

The tool answers each city with one of six conditions (sunny, rainy, cloudy, snowy, windy,
foggy), a fixed function of the city's name (:func:`condition_of`), so rows and tool agree
without state. The verifier reads the model's final answer: reward 1.0 when it names the
asked city's condition and no other condition, else 0.0. A small model calls the tool but often
drops, changes or hedges the condition in its answer, which training can fix: this is the
environment the closed training loop (``nemo_gym.training.loop``) learns on.
"""

from __future__ import annotations

import hashlib
import re

from fastapi import FastAPI
from pydantic import BaseModel, field_validator, model_validator

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.openai_utils import NeMoGymResponse

CONDITIONS = ("sunny", "rainy", "cloudy", "snowy", "windy", "foggy")
_WORDS = re.compile(r"[a-z]+")


def normalise_city(city: str) -> str:
    """Case, spacing and punctuation folded: ``" new  york!"`` -> ``"new york"``."""
    return " ".join(_WORDS.findall(city.lower()))


def condition_of(city: str) -> str:
    """The weather the tool reports for ``city`` (a hash of its normalised name)."""
    digest = hashlib.sha256(normalise_city(city).encode()).digest()
    return CONDITIONS[digest[0] % len(CONDITIONS)]


class WeatherConditionConfig(BaseResourcesServerConfig):
    pass


class GetWeatherRequest(BaseModel):
    city: str


class GetWeatherResponse(BaseModel):
    city: str
    condition: str


class WeatherVerifyRequest(BaseVerifyRequest):
    city: str
    """The city the user asked about."""
    condition: str
    """Its condition (what ``get_weather`` reports for it)."""

    @field_validator("condition")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CONDITIONS:
            raise ValueError(f"condition {value!r} is not one of {', '.join(CONDITIONS)}")
        return value

    @model_validator(mode="after")
    def _agrees_with_tool(self) -> WeatherVerifyRequest:
        if condition_of(self.city) != self.condition:
            raise ValueError(
                f"condition {self.condition!r} is not what get_weather reports for "
                f"{self.city!r} ({condition_of(self.city)!r})"
            )
        return self


class WeatherVerifyResponse(WeatherVerifyRequest, BaseVerifyResponse):
    answer: str
    """The final assistant message's text (what was graded)."""
    named_conditions: list[str]
    """The conditions the answer names, in the order of CONDITIONS."""


def final_answer(response: NeMoGymResponse) -> str:
    """The text of the last assistant message (empty when there is none)."""
    for item in reversed(response.output):
        if item.type == "message" and item.role == "assistant":
            return "".join(c.text for c in item.content if c.type == "output_text")
    return ""


def named_conditions(text: str) -> list[str]:
    words = set(_WORDS.findall(text.lower()))
    return [c for c in CONDITIONS if c in words]


class WeatherConditionServer(SimpleResourcesServer):
    config: WeatherConditionConfig

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.post("/get_weather")(self.get_weather)
        return app

    async def get_weather(self, body: GetWeatherRequest) -> GetWeatherResponse:
        return GetWeatherResponse(city=body.city, condition=condition_of(body.city))

    async def verify(self, body: WeatherVerifyRequest) -> WeatherVerifyResponse:
        answer = final_answer(body.response)
        named = named_conditions(answer)
        return WeatherVerifyResponse(
            **body.model_dump(),
            reward=float(named == [body.condition]),
            answer=answer,
            named_conditions=named,
        )


if __name__ == "__main__":
    WeatherConditionServer.run_webserver()
