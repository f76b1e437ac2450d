"""NeMo Gym compatibility: ``global_config``, the merged config and the names of its keys.

``get_global_config_dict()``: in a server process it returns the config ``ng_run`` gave the
process; elsewhere it merges ``env.yaml`` and the command line (``+key=value``) as the CLI does.
New code should build a config with :func:`nemo_gym.config.load_config` and pass it down.

The ``*_KEY_NAME`` constants name top-level config keys and the fields Gym adds to rows, as
NeMo Gym names them; ``PARENT_DIR`` (the project root), ``CACHE_DIR`` and ``RESULTS_DIR`` are
resolved when first read.

Neighbours: ``nemo_gym.config`` (loading), ``nemo_gym.server.launch`` (a server's config).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nemo_gym.config.instances import SERVER_TYPES
from nemo_gym.config.loader import DEFAULT_HEAD_PORT, load_config
from nemo_gym.config.parser_config import GlobalConfigDictParserConfig, load_from_parser_config
from nemo_gym.core.paths import project_root
from nemo_gym.server.launch import current_launch_context

__all__ = [
    "AGENT_REF_KEY_NAME",
    "ATTEMPT_INDEX_KEY_NAME",
    "CACHE_DIR",  # noqa: F822 (module __getattr__)
    "CACHE_DIR_KEY_NAME",
    "CONFIG_PATHS_KEY_NAME",
    "DEFAULT_HEAD_PORT",
    "DEFAULT_HEAD_SERVER_PORT",
    "DEFAULT_HOST_KEY_NAME",
    "DISALLOWED_PORTS_KEY_NAME",
    "ENTRYPOINT_KEY_NAME",
    "HEAD_SERVER_DEPS_KEY_NAME",
    "HEAD_SERVER_KEY_NAME",
    "HF_TOKEN_KEY_NAME",
    "NEMO_GYM_CONFIG_DICT_ENV_VAR_NAME",
    "NEMO_GYM_CONFIG_PATH_ENV_VAR_NAME",
    "PARENT_DIR",  # noqa: F822 (module __getattr__)
    "POLICY_API_KEY_KEY_NAME",
    "POLICY_BASE_URL_KEY_NAME",
    "POLICY_MODEL_NAME_KEY_NAME",
    "PYTHON_VERSION_KEY_NAME",
    "RAY_HEAD_NODE_ADDRESS_KEY_NAME",
    "RESPONSES_CREATE_PARAMS_KEY_NAME",
    "RESPONSE_KEY_NAME",
    "RESULTS_DIR",  # noqa: F822 (module __getattr__)
    "RESULTS_DIR_KEY_NAME",
    "ROLLOUT_ID_KEY_NAME",
    "ROLLOUT_INDEX_KEY_NAME",
    "SKILLS_REF_KEY_NAME",
    "TASK_INDEX_KEY_NAME",
    "DictConfig",
    "OmegaConf",
    "find_open_port",
    "get_first_server_config_dict",
    "get_global_config_dict",
    "get_hf_token",
    "maybe_get_global_config_dict",
]

# Environment variables a server process is started with.
NEMO_GYM_CONFIG_DICT_ENV_VAR_NAME = "NEMO_GYM_CONFIG_DICT"
NEMO_GYM_CONFIG_PATH_ENV_VAR_NAME = "NEMO_GYM_CONFIG_PATH"
# Top-level config keys.
CONFIG_PATHS_KEY_NAME = "config_paths"
ENTRYPOINT_KEY_NAME = "entrypoint"
DEFAULT_HOST_KEY_NAME = "default_host"
HEAD_SERVER_KEY_NAME = "head_server"
DISALLOWED_PORTS_KEY_NAME = "disallowed_ports"
HEAD_SERVER_DEPS_KEY_NAME = "head_server_deps"
PYTHON_VERSION_KEY_NAME = "python_version"
HF_TOKEN_KEY_NAME = "hf_token"
RAY_HEAD_NODE_ADDRESS_KEY_NAME = "ray_head_node_address"
RESULTS_DIR_KEY_NAME = "results_dir"
CACHE_DIR_KEY_NAME = "cache_dir"
POLICY_BASE_URL_KEY_NAME = "policy_base_url"
POLICY_API_KEY_KEY_NAME = "policy_api_key"
POLICY_MODEL_NAME_KEY_NAME = "policy_model_name"
# Fields of a row.
TASK_INDEX_KEY_NAME = "_ng_task_index"
ROLLOUT_INDEX_KEY_NAME = "_ng_rollout_index"
ATTEMPT_INDEX_KEY_NAME = "_ng_attempt_index"
ROLLOUT_ID_KEY_NAME = "_ng_rollout_id"
RESPONSES_CREATE_PARAMS_KEY_NAME = "responses_create_params"
RESPONSE_KEY_NAME = "response"
AGENT_REF_KEY_NAME = "agent_ref"
SKILLS_REF_KEY_NAME = "skills_ref"

DEFAULT_HEAD_SERVER_PORT = DEFAULT_HEAD_PORT

_DIRS = {
    "PARENT_DIR": lambda: project_root(),
    "CACHE_DIR": lambda: project_root() / "cache",
    "RESULTS_DIR": lambda: project_root() / "results",
}


def __getattr__(name: str) -> Path:
    """``PARENT_DIR``, ``CACHE_DIR`` and ``RESULTS_DIR``, resolved when read."""
    if name in _DIRS:
        return _DIRS[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def maybe_get_global_config_dict() -> DictConfig | None:
    """The config ``ng_run`` gave this process, or ``None`` outside a server process."""
    context = current_launch_context()
    return None if context is None else OmegaConf.create(context.config)


def get_global_config_dict(
    argv: list[str] | GlobalConfigDictParserConfig | None = None,
    *,
    global_config_dict_parser_config: GlobalConfigDictParserConfig | None = None,
    global_config_dict_parser_cls: Any = None,
) -> DictConfig:
    """Return the merged config (interpolations resolve on access).

    In a server process: the config ``ng_run`` gave it. Elsewhere: the sources a
    :class:`GlobalConfigDictParserConfig` names (NeMo Gym's signature; positional or by
    keyword), else ``env.yaml`` and the ``+key=value`` arguments of ``argv`` (by default the
    command line). ``disallowed_ports`` is ``[]`` when unset, as NeMo Gym's config always has it.
    ``global_config_dict_parser_cls`` is accepted for NeMo Gym's signature and not used.
    """
    config = maybe_get_global_config_dict()
    if config is None:
        parser = global_config_dict_parser_config
        if isinstance(argv, GlobalConfigDictParserConfig):
            parser, argv = argv, None
        if parser is not None:
            config = load_from_parser_config(parser).data
        else:
            if argv is None:
                argv = [a for a in sys.argv[1:] if a.startswith("+") or "=" in a]
            config = load_config(argv).data
    if config.get(DISALLOWED_PORTS_KEY_NAME) is None:
        config[DISALLOWED_PORTS_KEY_NAME] = []
    return config


def get_first_server_config_dict(config: Mapping[str, Any], name: str) -> DictConfig:
    """The settings of instance ``name`` (``config[name][server_type][implementation]``).

    Raises:
        KeyError: ``name`` is not a server instance of ``config`` (the message says why).
    """
    entry = config.get(name)
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise KeyError(f"no server instance named {name!r}")
    server_type, impls = next(iter(entry.items()))
    if server_type not in SERVER_TYPES or not isinstance(impls, Mapping) or len(impls) != 1:
        raise KeyError(f"{name!r} is not a server instance ({{server_type: {{implementation}}}})")
    settings = next(iter(impls.values()))
    return settings if isinstance(settings, DictConfig) else OmegaConf.create(dict(settings))


def find_open_port(disallowed_ports: list[int] | None = None, max_retries: int = 50) -> int:
    """A free TCP port on this host (chosen by the OS) that is not in ``disallowed_ports``.

    Raises:
        RuntimeError: no such port after ``max_retries`` tries.
    """
    disallowed = set(disallowed_ports or ())
    for _ in range(max_retries):
        with socket.socket() as s:
            s.bind(("", 0))
            port = int(s.getsockname()[1])
        if port not in disallowed:
            return port
    raise RuntimeError(
        f"no open port outside disallowed_ports {sorted(disallowed)} after {max_retries} tries"
    )


def get_hf_token() -> str | None:
    """The ``hf_token`` of the config, if set."""
    token = get_global_config_dict().get(HF_TOKEN_KEY_NAME)
    return None if token is None else str(token)
