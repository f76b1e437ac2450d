"""Where an instance runs on a Ray cluster: ``num_replicas`` and ``ray_actor_options``.

An instance is *placed* on the cluster when its section has ``num_replicas`` (or
``ray_actor_options``) and the config has ``ray_head_node_address``. Each replica is one Ray
actor that needs the resources of ``ray_actor_options`` (``num_cpus``, ``num_gpus``, custom
``resources`` such as a node label, ``{model_node: 1}``), so Ray puts model servers on model
nodes and resources servers on CPU nodes; ``max_restarts`` is how often Ray starts a dead
replica again. Other instances run as ``ng_run``'s own processes, as without Ray.

This module imports nothing of Ray. Neighbours: ``config.instances`` validates the keys with
:class:`Placement`; ``supervisor.startup`` asks :func:`placed_instances`; the replica driver
(``ray_support.driver``) and the client side (``server.replicas``) read it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ADDRESS_KEY = "ray_head_node_address"
PLACEMENT_KEYS = ("num_replicas", "ray_actor_options")


class RayActorOptions(BaseModel):
    """What each replica of an instance needs from the cluster."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(default=1.0, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources, e.g. {model_node: 1}."
    )
    max_restarts: int = Field(
        default=3, ge=-1, description="How often Ray restarts a dead replica (-1: always)."
    )


class Placement(BaseModel):
    """``num_replicas`` and ``ray_actor_options`` of one instance."""

    model_config = ConfigDict(extra="ignore")

    num_replicas: int = Field(default=1, ge=1)
    ray_actor_options: RayActorOptions = Field(default_factory=RayActorOptions)


def placement_of(settings: Mapping[str, Any]) -> Placement | None:
    """The placement an instance section asks for, or None (a plain local process)."""
    if not any(key in settings for key in PLACEMENT_KEYS):
        return None
    return Placement.model_validate(dict(settings))


def is_placed(config: Mapping[str, Any], name: str) -> bool:
    """Whether the instance ``name`` runs as Ray replicas in the run ``config`` describes."""
    from nemo_gym.config.instances import instance_section  # instances imports this module

    if not config.get(ADDRESS_KEY):
        return False
    section = instance_section(config, name)
    return section is not None and any(key in section[2] for key in PLACEMENT_KEYS)


def placed_instances(config: Mapping[str, Any]) -> list[str]:
    """Names of the instances that run as Ray replicas."""
    return [str(name) for name in config if is_placed(config, str(name))]


def local_cluster_size(config: Mapping[str, Any], cpu_count: int) -> dict[str, Any]:
    """What a one-node ``auto`` cluster offers so that every placed replica fits on it.

    At least ``cpu_count`` logical CPUs (more when the replicas ask for more: servers mostly
    wait on the network), and every custom resource the replicas ask for, as much as they
    ask for in all. Returns ``{num_cpus, resources}`` for ``start_local_cluster``.
    """
    from nemo_gym.config.instances import instance_section

    cpus = 0.0
    resources: dict[str, float] = {}
    for name in placed_instances(config):
        section = instance_section(config, name)
        placement = placement_of(section[2]) if section else None
        if placement is None:
            continue
        options = placement.ray_actor_options
        cpus += options.num_cpus * placement.num_replicas
        for key, amount in options.resources.items():
            resources[key] = resources.get(key, 0.0) + amount * placement.num_replicas
    return {"num_cpus": max(cpu_count, math.ceil(cpus)), "resources": resources}


_IMPORTS_RAY = re.compile(r"^\s*(import ray\b|from ray\b)", re.MULTILINE)


def servers_importing_ray(folders: Mapping[str, Path]) -> list[str]:
    """The instances whose implementation folder has Python code (tests aside) importing Ray.

    NeMo Gym's ``ng_run`` always starts or joins a Ray cluster, so an environment written for it
    may call ``ray.remote`` without saying so in its config; Gym starts one only for these.
    """
    users = []
    for name, folder in folders.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).parts
            if parts[0] in ("tests", ".venv") or path.name.startswith("test_"):
                continue
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if _IMPORTS_RAY.search(text):
                users.append(name)
                break
    return users
