"""Typed parameters for every command, ``+h=true`` help, and the shared error handling.

Each command declares a pydantic model of its parameters (field descriptions are the help
text). Only the model's own keys are resolved, so an unrelated unresolvable value in
``env.yaml`` does not break a command that does not use it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

from nemo_gym.config.loader import LoadedConfig, load_config
from nemo_gym.core.errors import ConfigError, GymError

P = TypeVar("P", bound=BaseModel)


def wants_help(cfg: DictConfig) -> bool:
    return any(str(cfg.get(k, "")).lower() in ("true", "1", "yes") for k in ("h", "help"))


def format_help(model: type[BaseModel], command: str) -> str:
    """The ``+h=true`` text: description and one line per parameter."""
    lines = [
        f"Displaying help for {command}",
        "",
        "Description",
        "-" * 11,
        inspect.cleandoc(model.__doc__ or ""),
        "",
        "Parameters",
        "-" * 10,
    ]
    if not model.model_fields:
        lines.append("There are no arguments to this CLI command!")
    for name, field in model.model_fields.items():
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation)
        kind = kind.replace("typing.", "")
        default = (
            "required"
            if field.is_required()
            else f"default {field.get_default(call_default_factory=True)!r}"
        )
        lines.append(f"+{field.alias or name} ({kind}, {default})")
        if field.description:
            lines.append(f"    {field.description}")
    return "\n".join(lines) + "\n"


def parse_params(model: type[P], loaded: LoadedConfig, command: str) -> P:
    """Validate the command's parameters, or print help and exit 0 on ``+h=true``.

    Raises:
        ConfigError: a parameter is missing or has the wrong type (names ``+key``).
    """
    cfg = loaded.data
    if wants_help(cfg):
        sys.stdout.write(format_help(model, command))
        sys.exit(0)
    values: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        name = info.alias or field_name
        if name not in cfg:
            continue
        try:
            node = cfg[name]
            values[name] = (
                OmegaConf.to_container(node, resolve=True)
                if isinstance(node, (DictConfig, ListConfig))
                else node
            )
        except OmegaConfBaseException as exc:
            raise loaded.error(f"cannot resolve: {exc}".splitlines()[0], name) from None
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        field = model.model_fields.get(str(err["loc"][0]))
        about = f" ({field.description})" if field and field.description else ""
        if err["type"] == "missing":
            raise ConfigError(
                f"missing required parameter +{key}=...{about}; see {command} +h=true",
                source="command line",
            ) from None
        raise ConfigError(
            f"+{key}: {err['msg']} (got {err.get('input')!r})", source="command line"
        ) from None


def load_params(
    model: type[P], command: str, argv: Sequence[str] | None = None
) -> tuple[P, LoadedConfig]:
    """Load the config from the command line and parse the command's parameters."""
    loaded = load_config(sys.argv[1:] if argv is None else argv)
    return parse_params(model, loaded, command), loaded


def cli_entry(fn: Callable[[], int | None]) -> Callable[[], None]:
    """Run a command: logging to stderr, Gym errors as one clear line, exit codes."""

    @functools.wraps(fn)
    def main() -> None:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(levelname)s: %(message)s"
        )
        try:
            code = fn()
        except ConfigError as exc:
            sys.stderr.write(f"error: {exc}\n")
            sys.exit(2)
        except GymError as exc:
            sys.stderr.write(f"error: {exc}\n")
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(code or 0)

    return main
