"""Typed parameters for every command, ``+h=true`` help, and the shared error handling.

Each command declares a pydantic model of its parameters (field descriptions are the help
text). Only the model's own keys are resolved, so an unrelated unresolvable value in
``env.yaml`` does not break a command that does not use it.

Command-line keys are strict: a ``+key`` that is neither a parameter of the command, nor one of
Gym's settings (``config.settings.GLOBAL_KEYS``), nor a key some config file or ``env.yaml``
already sets is an error with a "did you mean" (``+num_repeat=2`` is not silently ignored).
``ng_run`` and ``ng_dump_config`` take the whole config tree (``open_config``): any key may be
added there, for servers to read, so only a new scalar that no config value refers to and that
is one typo away from a parameter or setting (``+startup_timeout=5``, ``+config_path=[...]``)
is refused. A parameter model may name NeMo Gym parameters Gym calls otherwise in a
``renamed_parameters`` class variable, so that their "did you mean" is the right one.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

from nemo_gym.config.instances import SERVER_TYPES
from nemo_gym.config.loader import CLI_SOURCE, LoadedConfig, load_config
from nemo_gym.config.raw import raw_child
from nemo_gym.config.settings import GLOBAL_KEYS
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


def parameter_names(model: type[BaseModel]) -> list[str]:
    """The ``+key`` names of a command's parameters."""
    return [info.alias or name for name, info in model.model_fields.items()]


#: How close a new ``+key`` of ``ng_run`` must be to a known one to count as its typo.
OPEN_CONFIG_TYPO_CUTOFF = 0.8


def _is_server_instance(node: Any) -> bool:
    return isinstance(node, DictConfig) and any(str(k) in SERVER_TYPES for k in node)


def check_cli_keys(
    model: type[BaseModel], loaded: LoadedConfig, command: str, *, open_config: bool = False
) -> None:
    """Refuse a command-line ``+key`` the command does not know (see the module docstring).

    Raises:
        ConfigError: naming ``+key``, with a "did you mean" when a known key is close.
    """
    own = parameter_names(model)
    known = set(own) | GLOBAL_KEYS
    raw: str | None = None
    for key in loaded.cli_keys:
        if key in known or key in loaded.defined_keys:
            continue
        candidates = own + sorted(GLOBAL_KEYS - {"h", "help"})
        if open_config:
            if _is_server_instance(raw_child(loaded.data, key)):
                continue
            if raw is None:
                raw = OmegaConf.to_yaml(loaded.data, resolve=False)
            if re.search(r"\$\{" + re.escape(key) + r"[.}\[]", raw):  # an interpolated variable
                continue
            close = difflib.get_close_matches(key, candidates, 1, OPEN_CONFIG_TYPO_CUTOFF)
            if not close:
                continue
        else:
            close = difflib.get_close_matches(key, candidates, 1, 0.6)
        renamed: dict[str, str] = getattr(model, "renamed_parameters", {})
        if key in renamed:
            close = [renamed[key]]
        hint = f"; did you mean +{close[0]}?" if close else ""
        params = ", ".join(f"+{name}" for name in own) or "none"
        raise ConfigError(
            f"unknown parameter of {command}{hint} (its parameters: {params}; "
            f"see {command} +h=true)",
            source=CLI_SOURCE,
            key=f"+{key}",
        )


def parse_params(
    model: type[P], loaded: LoadedConfig, command: str, *, open_config: bool = False
) -> P:
    """Validate the command's parameters, or print help and exit 0 on ``+h=true``.

    Args:
        model: the command's parameters.
        loaded: the merged config.
        command: the command's name (for messages).
        open_config: the command takes arbitrary config keys (``ng_run``, ``ng_dump_config``).

    Raises:
        ConfigError: a parameter is unknown, missing or has the wrong type (names ``+key``).
    """
    cfg = loaded.data
    if wants_help(cfg):
        sys.stdout.write(format_help(model, command))
        sys.exit(0)
    check_cli_keys(model, loaded, command, open_config=open_config)
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
        source, line = loaded.source_of(key)
        raise ConfigError(
            loaded.redact_text(f"{err['msg']} (got {err.get('input')!r})"),
            source=source or CLI_SOURCE,
            key=f"+{key}" if source in (None, CLI_SOURCE) else key,
            line=line,
        ) from None


def load_params(
    model: type[P], command: str, argv: Sequence[str] | None = None, *, open_config: bool = False
) -> tuple[P, LoadedConfig]:
    """Load the config from the command line and parse the command's parameters.

    ``open_config``: see :func:`parse_params`.
    """
    loaded = load_config(sys.argv[1:] if argv is None else argv)
    return parse_params(model, loaded, command, open_config=open_config), loaded


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
