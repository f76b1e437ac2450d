"""structured_outputs: answer in JSON that fits a given JSON Schema.

Each row carries a JSON Schema (``schema_str``). ``verify`` takes the response's final text,
parses it as JSON (``checking.py``) and validates it against the schema, made strict unless the
row says ``strict: false`` (``json_schema.py``). Reward 1.0 when it parses and validates.
A row whose schema is not itself valid, or whose ``$ref`` cannot be resolved, gets 422 naming
``schema_str``: bad input is never scored 0.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import HTTPException
from pydantic import field_validator

from nemo_gym.authoring import final_answer_text
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from resources_servers.structured_outputs.checking import (
    ErrorKind,
    ParsePosition,
    Violation,
    check_response,
)
from resources_servers.structured_outputs.json_schema import (
    SchemaProblem,
    load_schema,
    validator_for_row,
)


class StructuredOutputsConfig(BaseResourcesServerConfig):
    pass


class StructuredOutputsVerifyRequest(BaseVerifyRequest):
    schema_str: str
    """The JSON Schema, as a JSON string; ``$schema`` picks the draft (default 2020-12)."""
    schema_type: Literal["json"] = "json"
    """Only JSON Schema is supported; anything else is rejected with 422."""
    strict: bool = True
    """Require every property of every object schema and forbid other keys (see README)."""
    schema_fields_count: int | None = None
    """Carried along, not used."""

    @field_validator("schema_str")
    @classmethod
    def _is_a_valid_schema(cls, value: str) -> str:
        load_schema(value)  # raises SchemaProblem, a ValueError: 422 naming schema_str
        return value


class StructuredOutputsVerifyResponse(StructuredOutputsVerifyRequest, BaseVerifyResponse):
    error_kind: ErrorKind | None
    """Null on success; else ``no_json``, ``invalid_json`` or ``schema_violation``."""
    error_message: str | None
    error_path: str | None
    """JSON pointer of the main failing value (schema violations only)."""
    error_position: ParsePosition | None
    """Where parsing failed (``invalid_json`` only)."""
    errors: list[Violation]
    """Every schema violation, at most ``checking.MAX_ERRORS`` of them."""
    errors_total: int


class StructuredOutputsServer(SimpleResourcesServer):
    config: StructuredOutputsConfig

    async def verify(self, body: StructuredOutputsVerifyRequest) -> StructuredOutputsVerifyResponse:
        validator = validator_for_row(body.schema_str, body.strict)
        try:
            # Validation is CPU work on possibly large documents: keep it off the event loop.
            result = await asyncio.to_thread(
                check_response, final_answer_text(body.response), validator
            )
        except SchemaProblem as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        return StructuredOutputsVerifyResponse(
            **body.model_dump(),
            reward=float(result.valid),
            error_kind=result.error_kind,
            error_message=result.error_message,
            error_path=result.error_path,
            error_position=result.error_position,
            errors=result.errors,
            errors_total=result.errors_total,
        )


if __name__ == "__main__":
    StructuredOutputsServer.run_webserver()
