"""From a loaded config to a supervisor over started servers: the start-up ``ng_run`` and the
trainers' ``RunHelper`` (``background.py``) share.

``launch`` swaps in the embedded local model when no policy endpoint is configured, resolves and
validates the config, installs what the servers' ``requirements.txt`` files ask for and the
environment lacks (``requirements.py``; a server with ``isolated_venv: true`` gets its own
environment instead, ``venvs.py``), binds every port and starts every server process and
the head server, and
hands back a :class:`~nemo_gym.supervisor.supervisor.Supervisor` that has not run yet.
``config_error`` turns a server's refusal of its settings into an error naming file and line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nemo_gym.config.instances import parse_server_instances
from nemo_gym.config.loader import LoadedConfig, resolve_config
from nemo_gym.config.placement import (
    ADDRESS_KEY,
    PLACEMENT_KEYS,
    local_cluster_size,
    placed_instances,
    servers_importing_ray,
)
from nemo_gym.config.policy import default_policy_to_local_model, offline_notice
from nemo_gym.config.secrets import redact, redact_text, secret_values
from nemo_gym.core.errors import ConfigError
from nemo_gym.supervisor.children import ChildProcess
from nemo_gym.supervisor.launcher import start_servers
from nemo_gym.supervisor.requirements import ensure_requirements
from nemo_gym.supervisor.supervisor import Supervisor, SupervisorOptions
from nemo_gym.supervisor.venvs import ensure_venv, wants_venv

if TYPE_CHECKING:
    from nemo_gym.ray_support.cluster import RayCluster


@dataclass
class Launched:
    """Servers started from one config, and the supervisor that will watch them."""

    supervisor: Supervisor
    children: list[ChildProcess]
    resolved: dict[str, object]
    cluster: RayCluster | None = None

    def close(self) -> None:
        """Stop the Ray cluster if this run started it (after the servers have stopped)."""
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None


def _ray_cluster(
    resolved: dict[str, object],
    loaded: LoadedConfig,
    folders: dict[str, Path],
    write: Callable[[str], None],
) -> RayCluster | None:
    """Start or join the cluster ``ray_head_node_address`` names; when it is not set, start a
    local one if a server's code imports Ray (as NeMo Gym always has one), else None."""
    address = resolved.get(ADDRESS_KEY)
    if not address:
        for name, value in resolved.items():
            section = value if isinstance(value, dict) else {}
            for impls in section.values():
                for impl, settings in impls.items() if isinstance(impls, dict) else ():
                    key = next((k for k in PLACEMENT_KEYS if k in (settings or {})), None)
                    if key is not None and isinstance(settings, dict):
                        raise loaded.error(
                            f"runs on a Ray cluster: set {ADDRESS_KEY} (`auto` starts a local "
                            "one, or the address of a running cluster)",
                            f"{name}.{next(iter(section))}.{impl}.{key}",
                        )
        users = servers_importing_ray(folders)
        if not users:
            return None
        write(
            f"{', '.join(users)} import{'s' if len(users) == 1 else ''} ray: starting a local Ray "
            f"cluster for {'it' if len(users) == 1 else 'them'} (set {ADDRESS_KEY} to join one)\n"
        )
        address = "auto"
    from nemo_gym.ray_support.cluster import ensure_cluster

    size = local_cluster_size(resolved, os.cpu_count() or 1)
    try:
        cluster = ensure_cluster(str(address), **size)
    except ConfigError as exc:
        raise loaded.error(exc.detail, ADDRESS_KEY) from None
    resolved[ADDRESS_KEY] = cluster.address  # what the servers join (NeMo Gym does the same)
    return cluster


def launch(
    loaded: LoadedConfig,
    *,
    start_mode: str,
    options: SupervisorOptions,
    write: Callable[[str], None],
    install_requirements: bool = True,
) -> Launched:
    """Start every server instance of ``loaded`` and the head server (see module docstring).

    Raises:
        ConfigError: the config is invalid, names no server, or a port is taken.
    """
    swapped = default_policy_to_local_model(loaded)
    if swapped:
        write(offline_notice(swapped) + "\n")
    resolved = resolve_config(loaded)
    instances = parse_server_instances(resolved, loaded)
    if not instances:
        raise ConfigError(
            'no server instances to start; name config files with "+config_paths=[a.yaml,b.yaml]"',
            source="command line",
        )
    isolated = {i.name: i.dir_path for i in instances if wants_venv(i.settings)}
    if install_requirements:
        ensure_requirements(
            {i.name: i.dir_path for i in instances if i.name not in isolated}, write
        )
    interpreters = {name: ensure_venv(name, folder, write) for name, folder in isolated.items()}
    cluster = _ray_cluster(resolved, loaded, {i.name: i.dir_path for i in instances}, write)
    if cluster is not None:
        write(f"Ray cluster: {cluster.address} ({'started' if cluster.started else 'joined'})\n")
    try:
        children = start_servers(
            resolved,
            instances,
            loaded.root,
            start_mode,
            options.graceful_shutdown_s,
            redact,
            interpreters,
            env=cluster.env() if cluster is not None else None,
            placed=frozenset(placed_instances(resolved)),
        )
    except ConfigError as exc:  # e.g. a port in use: name where that port was set
        if cluster is not None:
            cluster.shutdown()
        if exc.key is None or exc.source is not None:
            raise
        raise loaded.error(exc.detail, exc.key) from None
    except BaseException:
        if cluster is not None:
            cluster.shutdown()
        raise
    secrets = secret_values(resolved)
    supervisor = Supervisor(
        children, options, write, redact=lambda line: redact_text(line, secrets)
    )
    return Launched(supervisor, children, resolved, cluster)


def config_error(loaded: LoadedConfig, supervisor: Supervisor) -> ConfigError | None:
    """The error to raise when a server refused its settings, naming file and line."""
    if supervisor.config_error is None:
        return None
    key, message = supervisor.config_error
    return loaded.error(message, key) if key else ConfigError(loaded.redact_text(message))
