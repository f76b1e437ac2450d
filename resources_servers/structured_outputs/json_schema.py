"""structured_outputs: a row's JSON Schema, checked, optionally made strict, ready to validate.

``app.py`` calls :func:`load_schema` while parsing a row (a schema that is not itself valid is
bad input: the row gets 422) and :func:`validator_for_row` at verify time; ``checking.py`` runs
the validator on the response. Both are cached, since many rows share one schema.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

# Keywords whose value is a schema, a list of schemas, or a map of name -> schema. Walking only
# these (not every nested dict) keeps a property *named* "properties", or an enum value, intact.
_ONE = (
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "additionalItems",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


class SchemaProblem(ValueError):
    """The row's ``schema_str`` is not a usable JSON Schema."""


@functools.lru_cache(maxsize=512)
def load_schema(schema_str: str) -> tuple[dict[str, Any], type[Validator]]:
    """Parse ``schema_str`` and check it against its meta-schema.

    Returns:
        The schema and the validator class for its ``$schema`` (draft 2020-12 if absent).

    Raises:
        SchemaProblem: not JSON, not an object, an unknown ``$schema``, or an invalid schema.
    """
    try:
        schema = json.loads(schema_str)
    except json.JSONDecodeError as exc:
        raise SchemaProblem(f"schema_str is not JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise SchemaProblem(f"schema_str must be a JSON object, got {type(schema).__name__}")
    cls: type[Validator] = Draft202012Validator
    if "$schema" in schema:
        found: type[Validator] | None = validators.validator_for(schema, default=None)  # type: ignore[arg-type]
        if found is None:
            raise SchemaProblem(f"schema_str has an unknown $schema: {schema['$schema']!r}")
        cls = found
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(map(str, exc.path)) or "(root)"
        message = f"schema_str is not a valid JSON Schema at {where}: {exc.message}"
        raise SchemaProblem(message) from exc
    return schema, cls


def make_strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy in which every object schema with ``properties`` requires all of them and
    forbids other keys (``required`` = all property names, ``additionalProperties: false``),
    recursively, as NeMo Gym's structured_outputs did.
    """
    strict = copy.deepcopy(schema)
    _tighten(strict)
    return strict


def _tighten(node: Any) -> None:
    if not isinstance(node, dict):
        return
    if isinstance(node.get("properties"), dict):
        node["required"] = list(node["properties"])
        node["additionalProperties"] = False
    for key in _ONE:
        _tighten(node.get(key))
    for key in _MANY:
        if isinstance(node.get(key), list):
            for sub in node[key]:
                _tighten(sub)
    for key in _MAP:
        if isinstance(node.get(key), dict):
            for sub in node[key].values():
                _tighten(sub)


@functools.lru_cache(maxsize=512)
def validator_for_row(schema_str: str, strict: bool) -> Validator:
    """The validator for a row's schema (strict or as written); formats are not asserted."""
    schema, cls = load_schema(schema_str)
    return cls(make_strict(schema) if strict else schema)
