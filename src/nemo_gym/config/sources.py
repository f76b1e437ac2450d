"""Reading YAML config sources with errors that name the file and line.

Also answers "on which line of which file was this key written?" so that validation errors
elsewhere can point at it (``key_line``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nemo_gym.core.errors import ConfigError


def read_yaml_mapping(path: Path, label: str) -> dict[str, Any]:
    """Load a YAML file whose top level must be a mapping (an empty file is ``{}``).

    Raises:
        ConfigError: the file is missing, is not valid YAML, or is not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=label) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"invalid YAML: {problem}",
            source=label,
            line=mark.line + 1 if mark else None,
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level must be a mapping of keys to values, not {type(data).__name__}",
            source=label,
        )
    return data


@lru_cache(maxsize=64)
def _compose(path: str) -> yaml.Node | None:
    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def key_line(path: str, dotted_key: str) -> int | None:
    """Return the 1-based line where ``dotted_key`` is written in the YAML file, if found."""
    node = _compose(path)
    line: int | None = None
    for part in dotted_key.split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            return line
    return line
