"""structured_outputs: does the response's final text parse as JSON and fit the schema?

``app.py`` calls :func:`check_response` (in a worker thread) with the final text and a
validator from ``json_schema.py``; the result says what failed, where, and every violation.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from pydantic import BaseModel
from referencing.exceptions import Unresolvable

from resources_servers.structured_outputs.json_schema import SchemaProblem

ErrorKind = Literal["no_json", "invalid_json", "schema_violation"]
#: At most this many violations are recorded per response, each message at most this long.
MAX_ERRORS = 20
MAX_MESSAGE = 300

# The whole text may be one fenced block, ```json or bare ```, and nothing else.
_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n(.*?)\n?[ \t]*```\Z", re.DOTALL | re.IGNORECASE)


class ParsePosition(BaseModel):
    """Where JSON parsing failed, in the (unfenced) JSON text; line and column from 1."""

    line: int
    column: int
    offset: int


class Violation(BaseModel):
    """One way the document breaks the schema."""

    path: str
    """JSON pointer (RFC 6901) of the failing value; ``""`` is the whole document."""
    message: str
    keyword: str
    """The schema keyword that failed (``required``, ``type``, ``additionalProperties`` ...)."""
    schema_path: str
    """JSON pointer of that keyword in the (strict) schema."""


class CheckResult(BaseModel):
    valid: bool
    error_kind: ErrorKind | None = None
    error_message: str | None = None
    error_path: str | None = None
    error_position: ParsePosition | None = None
    errors: list[Violation] = []
    errors_total: int = 0


def json_pointer(parts: Any) -> str:
    """RFC 6901 pointer from path parts (a two-line escape; no library needed)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def json_text(text: str) -> str:
    """The text to parse: stripped, and unwrapped if it is exactly one fenced code block."""
    text = text.strip()
    fenced = _FENCE.match(text)
    return fenced.group(1).strip() if fenced else text


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _violation(error: ValidationError) -> Violation:
    return Violation(
        path=json_pointer(error.absolute_path),
        message=_short(error.message),
        keyword=str(error.validator),
        schema_path=json_pointer(error.absolute_schema_path),
    )


def check_response(text: str, validator: Validator) -> CheckResult:
    """Parse ``text`` as JSON (see :func:`json_text`) and validate it.

    Raises:
        SchemaProblem: the schema has a ``$ref`` that cannot be resolved (bad input, not a
            model failure).
    """
    body = json_text(text)
    if not body:
        return CheckResult(valid=False, error_kind="no_json", error_message="no text to parse")
    try:
        document = json.loads(body, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        return CheckResult(
            valid=False,
            error_kind="invalid_json",
            error_message=str(exc),
            error_position=ParsePosition(line=exc.lineno, column=exc.colno, offset=exc.pos),
        )
    except ValueError as exc:  # NaN / Infinity, which Python would otherwise accept
        return CheckResult(valid=False, error_kind="invalid_json", error_message=str(exc))
    try:
        violations = list(validator.iter_errors(document))
    except Unresolvable as exc:
        raise SchemaProblem(f"schema_str has a $ref that cannot be resolved: {exc}") from exc
    if not violations:
        return CheckResult(valid=True)
    main = best_match(violations)
    assert main is not None
    return CheckResult(
        valid=False,
        error_kind="schema_violation",
        error_message=_short(main.message),
        error_path=json_pointer(main.absolute_path),
        errors=[_violation(v) for v in violations[:MAX_ERRORS]],
        errors_total=len(violations),
    )
