"""example_multi_step: a task that needs several dependent tool calls, then a final one.

The model looks up a value for each of several synonyms (``get_synonym_value``) and then submits
the values, in the order asked, with ``extract_synonym_values``. The reward checks that final
submission: 1.0 when it equals ``expected_synonym_values`` exactly, in order.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)


class MultiStepConfig(BaseResourcesServerConfig):
    pass


class SynonymRequest(BaseModel):
    synonym: str


class ExtractRequest(BaseModel):
    synonym_values: list[int]


class MultiStepVerifyRequest(BaseVerifyRequest):
    expected_synonyms: list[str]
    expected_synonym_values: list[int]
    minefield_label: str | None = None
    minefield_label_value: int | None = None


class MultiStepVerifyResponse(MultiStepVerifyRequest, BaseVerifyResponse):
    parsed_synonym_values: list[int] | None
    accuracy: bool
    set_overlap: float
    original_term_minefield_hit: bool
    order_instruction_following_failure: bool


def synonym_value(synonym: str) -> int:
    """The value of a word: the sum of its characters' code points."""
    return sum(ord(ch) for ch in synonym)


def submitted_values(output: list[Any]) -> list[int] | None:
    """The values of the last ``extract_synonym_values`` call, or None if there is none usable."""
    for item in reversed(output):
        if (
            getattr(item, "type", None) == "function_call"
            and getattr(item, "name", None) == "extract_synonym_values"
        ):
            try:
                values = json.loads(item.arguments).get("synonym_values")
            except (json.JSONDecodeError, AttributeError):
                return None
            if isinstance(values, list) and all(isinstance(v, int) for v in values):
                return values
            return None
    return None


class MultiStepServer(SimpleResourcesServer):
    config: MultiStepConfig

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.post("/get_synonym_value")(self.get_synonym_value)
        app.post("/extract_synonym_values")(self.extract_synonym_values)
        return app

    async def get_synonym_value(self, body: SynonymRequest) -> dict[str, int]:
        return {"synonym_value": synonym_value(body.synonym)}

    async def extract_synonym_values(self, body: ExtractRequest) -> dict[str, bool]:
        return {"success": True}

    async def verify(self, body: MultiStepVerifyRequest) -> MultiStepVerifyResponse:
        values = submitted_values(body.response.output)
        expected = body.expected_synonym_values
        accuracy = values == expected
        overlap = len(set(values or []) & set(expected)) / len(set(expected)) if expected else 0.0
        minefield = body.minefield_label_value is not None and body.minefield_label_value in (
            values or []
        )
        return MultiStepVerifyResponse(
            **body.model_dump(),
            reward=float(accuracy),
            parsed_synonym_values=values,
            accuracy=accuracy,
            set_overlap=overlap,
            original_term_minefield_hit=minefield,
            order_instruction_following_failure=not accuracy and overlap == 1.0,
        )


if __name__ == "__main__":
    MultiStepServer.run_webserver()
