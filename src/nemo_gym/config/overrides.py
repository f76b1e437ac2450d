"""Command-line overrides in Hydra's grammar: ``+key=value``, ``++key=value``, ``key=value``.

We use Hydra's own override parser (so lists, ``null``, quoting and ``${...}`` behave exactly as
Hydra users expect) but not ``@hydra.main``: no output directories, no logging reconfiguration,
no working-directory changes. As in NeMo Gym, overrides are applied to an empty config that is
merged over the YAML files, so ``+key=value`` never clashes with a key a file already set.
Plain ``key=value`` is accepted too (Hydra would reject it because there is no base config).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nemo_gym.config.secrets import REDACTED, is_secret_key
from nemo_gym.core.errors import ConfigError


def _shown(arg: str) -> str:
    """``arg`` as an error may show it: the value of a credential-named key is hidden."""
    key, sep, value = arg.partition("=")
    if sep and value and is_secret_key(key.lstrip("+~").rsplit(".", 1)[-1]):
        return f"{key}={REDACTED}"
    return arg


def parse_overrides(argv: Sequence[str]) -> DictConfig:
    """Parse command-line arguments into a config.

    Args:
        argv: arguments such as ``["+agent_name=x", "+limit=5"]``.

    Returns:
        A config holding every override, nested by the dotted keys.

    Raises:
        ConfigError: an argument is not a valid override.
    """
    cfg = OmegaConf.create({})
    if not argv:
        return cfg
    # Imported here: Hydra's parser pulls in antlr, which only commands with arguments need.
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for arg in argv:
        try:
            (override,) = parser.parse_overrides([arg])
        except OverrideParseException as exc:
            first = str(exc).splitlines()[1] if "\n" in str(exc) else str(exc)
            if _shown(arg) != arg:  # the parser's detail may quote the value
                first = "not a valid value"
            raise ConfigError(
                f"cannot parse {_shown(arg)!r} ({first}); write +key=value, e.g. +limit=5",
                source="command line",
            ) from None
        key = override.key_or_group
        if override.package:
            key = f"{override.package}.{key}"
        if override.is_sweep_override():
            raise ConfigError(
                f"{_shown(arg)!r} is a sweep; Gym runs one config at a time",
                source="command line",
            )
        if override.is_delete():
            raise ConfigError(
                f"{_shown(arg)!r}: deleting keys is not supported", source="command line"
            )
        value: Any = override.value()
        existing = OmegaConf.select(cfg, key, throw_on_missing=False)
        if override.is_add() and existing is not None:
            raise ConfigError(
                f"{key} is given twice; use ++{key}=... to force the later value",
                source="command line",
                key=key,
            )
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    return cfg
