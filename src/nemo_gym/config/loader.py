"""Building the merged config: ``config_paths`` files, then ``env.yaml``, then the command line.

Precedence, lowest first: each file in ``config_paths`` in order (files may list further
``config_paths``, loaded after them, each once), ``env.yaml`` at the project root, a programmatic
``initial`` dict, and the command line. Relative config paths resolve against the project root.
``${...}`` interpolations stay unresolved until :func:`resolve_config`; a reference to a name that
is not a config key but is an environment variable (``policy_api_key: ${OPENAI_API_KEY}``) reads
the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from nemo_gym.config.overrides import parse_overrides
from nemo_gym.config.raw import raw_items, raw_value
from nemo_gym.config.secrets import config_secret_values, redact_text
from nemo_gym.config.settings import DEFAULT_HEAD_PORT, DEFAULT_HOST, apply_defaults
from nemo_gym.config.sources import key_line, read_yaml_mapping
from nemo_gym.core.errors import ConfigError
from nemo_gym.core.paths import project_root, resolve_path

CLI_SOURCE = "command line"
__all__ = [
    "CLI_SOURCE",
    "DEFAULT_HEAD_PORT",
    "DEFAULT_HOST",
    "LoadedConfig",
    "load_config",
    "resolve_config",
]
_BARE_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class LoadedConfig:
    """A merged, not yet resolved config and where each top-level key came from.

    Attributes:
        data: the merged config (interpolations unresolved).
        sources: top-level key -> label of the last source that set it (a file path relative to
            the root, ``env.yaml`` or ``command line``).
        root: the project root that relative paths resolve against.
        files: config file paths in load order, as absolute paths.
        cli_keys: top-level keys given on the command line, in order.
        defined_keys: top-level keys set by a config file, ``env.yaml`` or the initial dict.
        cli_paths: every dotted key set on the command line (leaves only).
        env_file: the ``env.yaml`` read, if any.
    """

    data: DictConfig
    sources: dict[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=project_root)
    files: list[Path] = field(default_factory=list)
    cli_keys: list[str] = field(default_factory=list)
    defined_keys: set[str] = field(default_factory=set)
    cli_paths: set[str] = field(default_factory=set)
    env_file: Path | None = None

    def source_of(self, dotted_key: str) -> tuple[str | None, int | None]:
        """Return ``(source label, line)`` of the source that set a dotted key last.

        The command line wins when it set the key (or a key above it); otherwise the last YAML
        source (config files in load order, then ``env.yaml``) that writes the whole key; else
        the source of its top-level key, with the line of the deepest part found there.
        """
        label = self.sources.get(dotted_key.split(".")[0])
        if label is None:
            return None, None
        if any(dotted_key == p or dotted_key.startswith(p + ".") for p in self.cli_paths):
            return CLI_SOURCE, None
        yaml_sources = [(_label(f, self.root), f) for f in self.files]
        if self.env_file is not None:
            yaml_sources.append(("env.yaml", self.env_file))
        if label == CLI_SOURCE or label in {name for name, _ in yaml_sources}:
            for name, path in reversed(yaml_sources):  # not replaced by the program (policy)
                line = key_line(str(path), dotted_key, exact=True)
                if line is not None:
                    return name, line
        if label == CLI_SOURCE:
            return label, None
        path = resolve_path(label, self.root)
        return label, key_line(str(path), dotted_key) if path.is_file() else None

    def error(self, message: str, key: str) -> ConfigError:
        """Build a :class:`ConfigError` that points at where ``key`` was written.

        Secret values of this config in ``message`` are replaced by ``***REDACTED***``.
        """
        source, line = self.source_of(key)
        return ConfigError(self.redact_text(message), source=source, key=key, line=line)

    def secret_values(self) -> set[str]:
        """The values of every credential-named key that resolves (see ``secrets``)."""
        return config_secret_values(self.data)

    def redact_text(self, text: str) -> str:
        """``text`` with every secret value of this config replaced by ``***REDACTED***``."""
        return redact_text(text, self.secret_values())


def _label(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _config_path_list(value: Any, source: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # "a.yaml,b.yaml" is accepted as well as a list
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, (list, tuple, ListConfig)) and all(isinstance(p, str) for p in value):
        return list(value)
    raise ConfigError(
        f"config_paths must be a list of file paths, got {value!r}",
        source=source,
        key="config_paths",
    )


def load_config(
    argv: Sequence[str] = (),
    *,
    root: Path | None = None,
    dotenv_path: Path | None = None,
    initial: Mapping[str, Any] | None = None,
    skip_dotenv: bool = False,
) -> LoadedConfig:
    """Merge every config source into one config.

    Args:
        argv: command-line overrides (``+key=value`` ...).
        root: project root; defaults to :func:`project_root`.
        dotenv_path: the ``env.yaml`` to read; defaults to ``<root>/env.yaml``.
        initial: programmatic values, between ``env.yaml`` and the command line.
        skip_dotenv: do not read ``env.yaml``.

    Raises:
        ConfigError: a source is missing, malformed, or a value cannot be parsed.
    """
    root = root or project_root()
    cli = parse_overrides(argv)
    env_path = dotenv_path or root / "env.yaml"
    env: dict[str, Any] = {}
    env_file: Path | None = None
    if not skip_dotenv and env_path.is_file():
        env = read_yaml_mapping(env_path, _label(env_path, root))
        env_file = env_path
    initial_cfg = OmegaConf.create(dict(initial or {}))

    upper = OmegaConf.merge(OmegaConf.create(env), initial_cfg, cli)
    assert isinstance(upper, DictConfig)
    try:
        listed = upper.get("config_paths")
        if isinstance(listed, ListConfig):
            listed = OmegaConf.to_container(listed, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot resolve config_paths: {exc}", key="config_paths") from None
    source = CLI_SOURCE if "config_paths" in cli else "env.yaml"
    queue = _config_path_list(listed, source)

    merged: Any = OmegaConf.create({})
    sources: dict[str, str] = {}
    files: list[Path] = []
    seen: set[Path] = set()
    all_paths: list[str] = []
    while queue:
        raw = queue.pop(0)
        path = resolve_path(raw, root).resolve()
        if path in seen:
            continue
        seen.add(path)
        label = _label(path, root)
        if not path.is_file():
            hint = (
                f" (resolved against the project root {root})"
                if not Path(raw).is_absolute()
                else ""
            )
            raise ConfigError(
                f"config file {raw!r} not found{hint}", source=source, key="config_paths"
            )
        data = read_yaml_mapping(path, label)
        nested = _config_path_list(data.pop("config_paths", None), label)
        queue.extend(nested)
        files.append(path)
        all_paths.append(raw)
        try:
            merged = OmegaConf.merge(merged, OmegaConf.create(data))
        except OmegaConfBaseException as exc:
            raise ConfigError(f"cannot merge: {exc}", source=label) from None
        for key in data:
            sources[key] = label
    for key in env:
        sources[key] = "env.yaml"
    for key in initial or {}:
        sources[key] = "initial config"
    defined = set(sources)
    cli_keys = [str(k) for k in cli]
    for cli_key in cli_keys:
        sources[cli_key] = CLI_SOURCE
    merged = OmegaConf.merge(merged, upper)
    assert isinstance(merged, DictConfig)
    merged.config_paths = all_paths
    apply_defaults(merged)
    _bind_environment(merged)
    return LoadedConfig(
        data=merged,
        sources=sources,
        root=root,
        files=files,
        cli_keys=cli_keys,
        defined_keys=defined,
        cli_paths=_leaf_paths(cli),
        env_file=env_file,
    )


def _leaf_paths(cfg: DictConfig, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, child in raw_items(cfg):
        path = f"{prefix}{key!s}"
        if isinstance(child, DictConfig) and len(child):
            paths |= _leaf_paths(child, path + ".")
        else:
            paths.add(path)
    return paths


def _bind_environment(cfg: DictConfig) -> None:
    """Rewrite ``${NAME}`` to ``${oc.env:NAME}`` where NAME is no config key but an env var."""

    def visit(node: Any) -> None:
        for key, raw in raw_items(node):
            if isinstance(raw, (DictConfig, ListConfig)):
                visit(raw)
                continue
            if not isinstance(raw, str) or "${" not in raw:
                continue

            def swap(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in cfg and name in os.environ:
                    return "${oc.env:" + name + "}"
                return match.group(0)

            rewritten = _BARE_INTERPOLATION.sub(swap, raw)
            if rewritten != raw:
                node[key] = rewritten

    visit(cfg)


def resolve_config(loaded: LoadedConfig) -> dict[str, Any]:
    """Resolve every interpolation and return a plain dict.

    Raises:
        ConfigError: a value is missing (``???``) or refers to a key that does not exist; the
            error names the key, the file it was written in, and the missing reference.
    """
    try:
        container = OmegaConf.to_container(loaded.data, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        key = exc.full_key or "?"
        raise loaded.error(
            f"is required but has no value (???); set it in env.yaml or with +{key}=...", key
        ) from None
    except InterpolationResolutionError as exc:
        key = exc.full_key or "?"
        missing = _missing_reference(str(exc))
        hint = ""
        if missing:
            hint = (
                f": {missing!r} is neither a config key nor an environment variable; set "
                f"{missing} in env.yaml (or export it)"
            )
        raise loaded.error(f"cannot resolve {raw_value(loaded.data, key)!r}{hint}", key) from None
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot resolve the config: {exc}") from None
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def _missing_reference(message: str) -> str | None:
    match = re.search(r"Interpolation key '([^']+)' not found", message)
    return match.group(1) if match else None
