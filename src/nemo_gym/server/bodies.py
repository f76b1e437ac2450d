"""Reading a JSON request body that is validated against a model but forwarded as received.

Proxy-like routes (a model server passing create params upstream, an agent passing a row on)
must reject invalid input with errors that name the field, but gain nothing from turning the
validated model back into a dict: they keep the parsed dict, which is what they send on.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from nemo_gym.core import jsonbytes


async def json_body(request: Request) -> Any:
    """The body parsed (in bounded memory for large bodies, ``core.jsonbytes``).

    Raises:
        RequestValidationError: the body is not JSON (answered as 422).
    """
    try:
        return jsonbytes.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]
        ) from None


async def validated_json(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """Parse the body and validate it against ``model``; return the parsed dict.

    Raises:
        RequestValidationError: the body is not JSON, not an object, or not valid for
            ``model`` (answered as 422 naming the fields by Gym's error handler).
    """
    data = await json_body(request)
    if not isinstance(data, dict):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "must be a JSON object", "type": "dict_type"}]
        )
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    return data
