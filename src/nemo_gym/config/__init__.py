"""Configuration: parsing the command line, merging YAML sources, validating server instances.

Neighbours: ``cli`` builds a config once at the edge with :func:`load_config` and passes the
result down; ``server.launch`` hands each server process its resolved section.
"""

from nemo_gym.config.instances import ServerInstance, ServerRef, parse_server_instances
from nemo_gym.config.loader import LoadedConfig, load_config, resolve_config
from nemo_gym.config.secrets import redact

__all__ = [
    "LoadedConfig",
    "ServerInstance",
    "ServerRef",
    "load_config",
    "parse_server_instances",
    "redact",
    "resolve_config",
]
