"""NeMo Gym compatibility: ``get_global_config_dict()``.

In a server process it returns the config ``ng_run`` gave the process; elsewhere it merges
``env.yaml`` and the command line (``+key=value``) as the CLI does. New code should build a
config with :func:`nemo_gym.config.load_config` and pass it down instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nemo_gym.config.instances import instance_section
from nemo_gym.config.loader import DEFAULT_HEAD_PORT, load_config

__all__ = ["DEFAULT_HEAD_PORT", "get_global_config_dict"]


def get_global_config_dict(argv: list[str] | None = None) -> DictConfig:
    """Return the merged config (interpolations resolve on access)."""
    from nemo_gym.server import launch

    if launch._context is not None or os.environ.get("NEMO_GYM_CONFIG_DICT"):
        return OmegaConf.create(launch.launch_context().config)
    if argv is None:
        argv = [a for a in sys.argv[1:] if a.startswith("+") or "=" in a]
    return load_config(argv).data


def get_first_server_config_dict(config: Any, name: str) -> Any:
    """The settings of instance ``name`` (``config[name][type][impl]``)."""
    section = instance_section(config, name)
    if section is None:
        raise KeyError(f"no server instance named {name!r}")
    return section[2]
