"""Gym's own top-level settings: which keys are known, and checking the ones Gym reads.

Top-level keys of the merged config are either server instances, variables that other values
interpolate (``${policy_base_url}``), or settings of Gym itself. :data:`GLOBAL_KEYS` names the
settings (NeMo Gym's reserved and recognised keys, so that configs written for it keep working);
``cli.params`` uses it to tell a typo on the command line from a real key.
:func:`check_global_settings` validates the settings Gym reads (``head_server``,
``default_host``) so that ``head_server.port: abc`` is one clear error naming the file, line and
key instead of a traceback where the port is first used.

Neighbours: ``loader`` builds the config and fills in the defaults from here;
``instances`` skips these keys when it looks for server instances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

if TYPE_CHECKING:
    from nemo_gym.config.loader import LoadedConfig

DEFAULT_HEAD_PORT = 11000
DEFAULT_HOST = "127.0.0.1"

#: Keys that are settings of Gym (or of NeMo Gym), never server instances.
RESERVED_KEYS = frozenset(
    {
        "config_paths",
        "entrypoint",
        "default_host",
        "head_server",
        "disallowed_ports",
        "head_server_deps",
        "python_version",
        "h",
        "help",
    }
)

#: Every top-level key Gym or NeMo Gym gives a meaning to.
GLOBAL_KEYS = RESERVED_KEYS | frozenset(
    {
        "policy_base_url",
        "policy_api_key",
        "policy_model_name",
        "error_on_almost_servers",
        "ray_head_node_address",
        "profiling_enabled",
        "profiling_results_dirpath",
        "uvicorn_logging_show_200_ok",
        "global_aiohttp_connector_limit",
        "global_aiohttp_connector_limit_per_host",
        "global_aiohttp_client_request_debug",
        "mlflow_tracking_uri",
        "mlflow_tracking_token",
    }
)


def apply_defaults(cfg: DictConfig) -> None:
    """Fill in ``default_host`` and ``head_server`` where no source set them."""
    if cfg.get("default_host") is None:
        cfg.default_host = DEFAULT_HOST
    head = cfg.get("head_server")
    if head is None:
        cfg.head_server = {"host": "${default_host}", "port": DEFAULT_HEAD_PORT}
    elif isinstance(head, DictConfig):  # anything else is reported by check_global_settings
        if head.get("host") is None:
            head.host = "${default_host}"
        if head.get("port") is None:
            head.port = DEFAULT_HEAD_PORT


def _port_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a port number from 1 to 65535 (got {value!r})"
    if not 1 <= value <= 65535:
        return f"must be a port number from 1 to 65535 (got {value})"
    return None


def _host_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"must be a host name or IP address, e.g. 127.0.0.1 (got {value!r})"
    return None


def check_global_settings(resolved: dict[str, Any], loaded: LoadedConfig) -> None:
    """Check ``default_host`` and ``head_server`` of a resolved config.

    Raises:
        ConfigError: naming the key, and the file and line it was written in.
    """
    if (problem := _host_problem(resolved.get("default_host"))) is not None:
        raise loaded.error(problem, "default_host")
    head = resolved.get("head_server")
    if not isinstance(head, dict):
        raise loaded.error(
            f"must be a mapping like {{host: 127.0.0.1, port: 11000}} (got {head!r})",
            "head_server",
        )
    if (problem := _host_problem(head.get("host"))) is not None:
        raise loaded.error(problem, "head_server.host")
    if (problem := _port_problem(head.get("port"))) is not None:
        raise loaded.error(problem, "head_server.port")


def head_address(loaded: LoadedConfig) -> tuple[str, int]:
    """The head server's ``(host, port)`` from a config that is otherwise left unresolved.

    Only ``head_server`` and ``default_host`` are resolved, so a command that only talks to the
    head server is not stopped by an unrelated value it does not use.

    Raises:
        ConfigError: either value cannot be resolved or is not a host / port.
    """
    resolved: dict[str, Any] = {}
    for key in ("default_host", "head_server"):
        try:
            node = loaded.data.get(key)
            resolved[key] = (
                OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
            )
        except OmegaConfBaseException as exc:
            raise loaded.error(f"cannot resolve: {exc}".splitlines()[0], key) from None
    check_global_settings(resolved, loaded)
    head = resolved["head_server"]
    return str(head["host"]), int(head["port"])
