"""A server process checks its own settings, and reports a config error to ``ng_run``.

Only the server process knows its implementation's config class, so it checks its section
before it starts: every key must be a field of that class (or of a nested settings model), one
of the keys NeMo Gym gives a meaning to in any instance (:data:`COMMON_INSTANCE_KEYS`), or Gym's
own per-instance settings. ``max_step: 1`` for an agent whose field is ``max_steps`` is an error
with a "did you mean", not a setting silently ignored. An implementation that reads arbitrary
keys says so with ``accepts_any_settings: ClassVar[bool] = True`` on its config class.

Error messages never carry a secret: a wrong value is shown only when its key is not a
credential, and every secret value of the config is redacted from the text.

The process cannot know in which file and on which line a key was written (it gets the resolved
config only), so it reports the error as one marker line on stderr (:func:`config_error_line`)
and exits with code 2; ``ng_run`` (``supervisor``) finds that line (:func:`parse_config_error`)
and names the file and line from its own record of the sources.

Neighbours: ``server.launch`` calls :func:`validate_settings`; ``secrets`` does the redaction.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from nemo_gym.config.secrets import is_secret_key, redact_text, secret_values
from nemo_gym.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: Keys any instance may hold: read by NeMo Gym's instance schema and its README/table scripts.
COMMON_INSTANCE_KEYS = frozenset(
    {
        "entrypoint",
        "host",
        "port",
        "name",
        "domain",
        "datasets",
        "verified",
        "verified_url",
        "description",
        "value",
        "dataset_name",
        "license",
    }
)
#: Per-instance settings Gym reads outside the implementation's config class.
GYM_INSTANCE_KEYS = frozenset(
    {"request_timeout_s", "isolated_venv", "num_replicas", "ray_actor_options"}
)
#: The prefix of the line a server process writes to stderr for a config error.
CONFIG_ERROR_MARKER = "NEMO_GYM_CONFIG_ERROR "


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
        if isinstance(info.validation_alias, str):
            names.add(info.validation_alias)
    return names


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds (``Sub`` or ``Sub | None``), if it is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(models) == 1:
            return _nested_model(models[0])
    return None


def _unknown_key(
    model: type[BaseModel], values: Mapping[str, Any], allowed: frozenset[str]
) -> tuple[str, list[str]] | None:
    """The first unknown (dotted) key of ``values`` and the keys that were allowed there."""
    known = _field_names(model) | allowed
    for key, value in values.items():
        if key not in known:
            return str(key), sorted(known)
        info = model.model_fields.get(str(key))
        nested = _nested_model(info.annotation) if info is not None else None
        if nested is None or not isinstance(value, Mapping):
            continue
        if nested.model_config.get("extra") in ("allow", "forbid"):  # open, or pydantic checks
            continue
        found = _unknown_key(nested, value, frozenset())
        if found is not None:
            return f"{key}.{found[0]}", found[1]
    return None


def check_setting_keys(
    config_cls: type[BaseModel], settings: Mapping[str, Any], where: str
) -> None:
    """Refuse a key ``config_cls`` does not declare (see the module docstring).

    Args:
        config_cls: the implementation's config class.
        settings: the instance's settings.
        where: the dotted key of the settings (``name.server_type.implementation``).

    Raises:
        ConfigError: naming the unknown key, with a "did you mean" when one is close.
    """
    if getattr(config_cls, "accepts_any_settings", False):
        return
    found = _unknown_key(config_cls, settings, COMMON_INSTANCE_KEYS | GYM_INSTANCE_KEYS)
    if found is None:
        return
    key, known = found
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if "." in key:  # a nested settings model: all its fields
        own = known
    else:  # the implementation's own fields (the common keys are documented elsewhere)
        own = sorted(_field_names(config_cls) - COMMON_INSTANCE_KEYS)
    listed = ", ".join(own) or "none besides entrypoint, host and port"
    raise ConfigError(
        f"unknown setting {leaf!r} for {config_cls.__name__}{hint}; its settings are: {listed}",
        key=f"{where}.{key}",
    )


def validate_settings(
    config_cls: type[M], settings: Mapping[str, Any], where: str, config: Mapping[str, Any]
) -> M:
    """Check the keys of ``settings``, then validate them as ``config_cls``.

    Args:
        config_cls: the implementation's config class.
        settings: the instance's settings (with ``name`` added).
        where: the dotted key of the settings (``name.server_type.implementation``).
        config: the whole resolved config (its secrets are redacted from every message).

    Raises:
        ConfigError: naming the first wrong key; no secret value is in the message.
    """
    check_setting_keys(config_cls, settings, where)
    try:
        return config_cls.model_validate(dict(settings))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "missing":
            message = f"missing required setting {loc[-1]!r}"
        elif any(is_secret_key(p) for p in loc):
            message = f"{err['msg']} (value not shown: it is a credential)"
        else:
            message = f"{err['msg']} (got {err.get('input')!r})"
        secrets = secret_values(dict(config)) | secret_values(dict(settings))
        raise ConfigError(redact_text(message, secrets), key=f"{where}.{key}") from None


def config_error_line(exc: ConfigError) -> str:
    """The one line a server process writes to stderr to report ``exc`` to ``ng_run``."""
    return CONFIG_ERROR_MARKER + json.dumps({"key": exc.key, "message": exc.detail})


def parse_config_error(line: str) -> tuple[str | None, str] | None:
    """``(key, message)`` of a line written by :func:`config_error_line`, else None."""
    if not line.startswith(CONFIG_ERROR_MARKER):
        return None
    try:
        data = json.loads(line[len(CONFIG_ERROR_MARKER) :])
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return None
    key = data.get("key")
    return (key if isinstance(key, str) else None), data["message"]
