"""Server instances: ``instance_name -> server_type -> implementation -> {entrypoint, ...}``.

Validates the merged, resolved config and turns each instance into a :class:`ServerInstance`.
Every error names the instance, the dotted key, and the file and line it was written in:
an unknown server type (with a "did you mean"), a missing ``entrypoint``, a wrong value type,
an implementation folder or entrypoint that does not exist, a ``domain`` NeMo Gym does not know,
a ``datasets:`` entry that breaks its schema (``datasets.schema``), and a ``{type, name}``
reference to an instance that is not defined. Which settings an implementation accepts is
checked by its own process (``server_settings``), which knows the implementation's config class.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nemo_gym.config.datasets import DatasetConfig as DatasetConfig  # re-exported
from nemo_gym.config.loader import LoadedConfig
from nemo_gym.config.placement import RayActorOptions
from nemo_gym.config.settings import RESERVED_KEYS, check_global_settings
from nemo_gym.core.errors import ConfigError

ServerType = Literal["responses_api_models", "resources_servers", "responses_api_agents"]
SERVER_TYPES: tuple[str, ...] = (
    "responses_api_models",
    "resources_servers",
    "responses_api_agents",
)
Domain = Literal[
    "math",
    "coding",
    "agent",
    "knowledge",
    "instruction_following",
    "long_context",
    "safety",
    "games",
    "translation",
    "e2e",
    "rlhf",
    "other",
]
#: Every ``domain`` NeMo Gym accepts (its ``Domain`` enum, January 2026 and later).
DOMAINS: tuple[str, ...] = get_args(Domain)


class ServerRef(BaseModel):
    """A reference from one instance's config to another instance."""

    model_config = ConfigDict(extra="forbid")

    type: ServerType
    name: str


class InstanceSettings(BaseModel):
    """The fields Gym itself reads from an instance; implementations add their own (extras)."""

    model_config = ConfigDict(extra="allow")

    entrypoint: str = Field(
        description="Python file to run, relative to the implementation folder."
    )
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    domain: Domain | None = None
    datasets: list[DatasetConfig] | None = None
    num_replicas: int | None = Field(
        default=None, ge=1, description="Replicas on the Ray cluster (ray_head_node_address)."
    )
    ray_actor_options: RayActorOptions | None = None


@dataclass
class ServerInstance:
    """One server process to start.

    Attributes:
        name: the unique instance name (top-level key).
        server_type: one of :data:`SERVER_TYPES`.
        impl: the implementation folder name under ``<root>/<server_type>/``.
        settings: the instance's resolved config section (what the server validates).
        dir_path: the implementation folder.
        source: the config file that defined the instance.
    """

    name: str
    server_type: str
    impl: str
    settings: dict[str, Any]
    dir_path: Path
    source: str | None

    @property
    def entrypoint(self) -> Path:
        """The Python file the process runs."""
        return self.dir_path / str(self.settings["entrypoint"])

    @property
    def host(self) -> str:
        return str(self.settings["host"])

    @property
    def port(self) -> int:
        return int(self.settings["port"])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def instance_section(
    config: Mapping[str, Any], name: str
) -> tuple[str, str, dict[str, Any]] | None:
    """``(server_type, implementation, settings)`` of the instance ``name``, or None."""
    entry = config.get(name)
    if not isinstance(entry, Mapping) or len(entry) != 1:
        return None
    server_type, impls = next(iter(entry.items()))
    if server_type not in SERVER_TYPES or not isinstance(impls, Mapping) or len(impls) != 1:
        return None
    impl, settings = next(iter(impls.items()))
    return str(server_type), str(impl), dict(settings)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _looks_like_instance(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (inner,) = value.values()
    if not isinstance(inner, dict) or len(inner) != 1:
        return False
    (settings,) = inner.values()
    return isinstance(settings, dict) and "entrypoint" in settings


def parse_server_instances(
    resolved: dict[str, Any],
    loaded: LoadedConfig,
    *,
    check_files: bool = True,
) -> list[ServerInstance]:
    """Find and validate every server instance in a resolved config.

    Args:
        resolved: the output of :func:`~nemo_gym.config.loader.resolve_config`.
        loaded: the same config before resolution (for error locations and the root).
        check_files: also check that implementation folders and entrypoints exist.

    Raises:
        ConfigError: naming the first problem found (Gym's own settings are checked first).
    """
    check_global_settings(resolved, loaded)
    instances: list[ServerInstance] = []
    for name, value in resolved.items():
        if name in RESERVED_KEYS or not isinstance(value, dict) or not value:
            continue
        first = next(iter(value))
        if first not in SERVER_TYPES:
            if _looks_like_instance(value):
                raise loaded.error(
                    f"unknown server type {first!r}{_suggest(first, list(SERVER_TYPES))}; "
                    f"expected one of {', '.join(SERVER_TYPES)}",
                    f"{name}.{first}",
                )
            continue
        if len(value) != 1:
            extra = [k for k in value if k != first]
            raise loaded.error(
                f"an instance has exactly one server type, found also {extra}",
                name,
            )
        impls = value[first]
        if not isinstance(impls, dict) or len(impls) != 1:
            raise loaded.error(
                "must map exactly one implementation folder name to its settings, e.g. "
                f"{first}: {{simple_agent: {{entrypoint: app.py}}}}",
                f"{name}.{first}",
            )
        impl, settings = next(iter(impls.items()))
        key = f"{name}.{first}.{impl}"
        if not isinstance(settings, dict):
            raise loaded.error("must be a mapping of settings with at least `entrypoint`", key)
        if "entrypoint" not in settings:
            raise loaded.error(
                "missing `entrypoint` (the file to run, e.g. entrypoint: app.py)", key
            )
        try:
            InstanceSettings.model_validate(settings)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise loaded.error(
                f"{err['msg']} (got {err.get('input')!r})", f"{key}.{field}"
            ) from None
        dir_path = loaded.root / first / str(impl)
        if check_files:
            if not dir_path.is_dir():
                options = [p.name for p in (loaded.root / first).glob("*") if p.is_dir()]
                raise loaded.error(
                    f"implementation folder {first}/{impl} does not exist"
                    f"{_suggest(str(impl), options)}",
                    key,
                )
            if not (dir_path / str(settings["entrypoint"])).is_file():
                raise loaded.error(
                    f"entrypoint {first}/{impl}/{settings['entrypoint']} does not exist",
                    f"{key}.entrypoint",
                )
        instances.append(
            ServerInstance(
                name=name,
                server_type=first,
                impl=str(impl),
                settings=settings,
                dir_path=dir_path,
                source=loaded.sources.get(name),
            )
        )
    _check_references(instances, loaded)
    return instances


def _find_refs(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if set(node) == {"type", "name"} and node.get("type") in SERVER_TYPES:
            return [(path, node)]
        for k, v in node.items():
            found.extend(_find_refs(v, f"{path}.{k}"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found.extend(_find_refs(v, f"{path}.{i}"))
    return found


def _check_references(instances: list[ServerInstance], loaded: LoadedConfig) -> None:
    by_type: dict[str, list[str]] = {t: [] for t in SERVER_TYPES}
    for inst in instances:
        by_type[inst.server_type].append(inst.name)
    for inst in instances:
        for path, ref in _find_refs(inst.settings, f"{inst.name}.{inst.server_type}.{inst.impl}"):
            names = by_type[ref["type"]]
            if ref["name"] not in names:
                known = ", ".join(names) or "none"
                raise loaded.error(
                    f"refers to {ref['type']} instance {ref['name']!r}, which is not defined"
                    f"{_suggest(str(ref['name']), names)}; defined {ref['type']}: {known}",
                    f"{path}.name",
                )


_TYPE_NAMES = {
    "responses_api_models": "a model server",
    "resources_servers": "a resources server",
    "responses_api_agents": "an agent",
}


def check_agent_name(config: Mapping[str, Any], name: str, key: str = "+agent_name") -> None:
    """Refuse ``name`` unless it is an agent instance of ``config`` (a running setup's config).

    Raises:
        ConfigError: ``name`` is another kind of server, or no instance; lists the agents.
    """
    agents = [
        str(k)
        for k in config
        if (section := instance_section(config, str(k))) and section[0] == "responses_api_agents"
    ]
    section = instance_section(config, name)
    if section is not None and section[0] == "responses_api_agents":
        return
    listed = ", ".join(agents) or "none"
    if section is not None:
        what = _TYPE_NAMES.get(section[0], section[0])
        message = f"{name!r} is {what} ({section[0]}/{section[1]}), not an agent"
    else:
        message = f"no server instance named {name!r}{_suggest(name, agents)}"
    raise ConfigError(
        f"{message}; rollouts run through an agent. Agents running: {listed}",
        source="command line",
        key=key,
    )
