"""``+entrypoint=<server_type>/<name>``: which server folder a command means, checked up front.

Shared by ``ng_init_resources_server`` and ``ng_test``; the folder is resolved against the
project root (``nemo_gym.core.paths``), so the commands work from any current directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nemo_gym.config.instances import SERVER_TYPES
from nemo_gym.core.errors import ConfigError
from nemo_gym.core.paths import project_root

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class ServerFolder:
    """A server folder such as ``resources_servers/my_env`` under the project root."""

    server_type: str
    name: str
    root: Path

    @property
    def relative(self) -> str:
        return f"{self.server_type}/{self.name}"

    @property
    def path(self) -> Path:
        return self.root / self.server_type / self.name


def parse_entrypoint(
    value: str, *, server_types: tuple[str, ...] = SERVER_TYPES, root: Path | None = None
) -> ServerFolder:
    """Check ``value`` is ``<server_type>/<name>`` with a valid Python package name.

    Raises:
        ConfigError: naming ``+entrypoint`` and what is wrong with it.
    """
    parts = PurePosixPath(value.strip().rstrip("/")).parts
    if len(parts) != 2 or parts[0] not in server_types:
        raise ConfigError(
            f"+entrypoint={value!r} must be <server_type>/<name> with <server_type> one of "
            f"{', '.join(server_types)} (e.g. resources_servers/my_env)",
            source="command line",
        )
    if not _NAME.fullmatch(parts[1]):
        raise ConfigError(
            f"+entrypoint={value!r}: {parts[1]!r} is not a usable name; use lower case letters, "
            "digits and underscores, starting with a letter (it becomes a Python package)",
            source="command line",
        )
    return ServerFolder(parts[0], parts[1], root or project_root())
