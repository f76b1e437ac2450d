"""Reading YAML config sources with errors that name the file and line.

A key written twice in one mapping is an error naming both lines (a plain YAML loader keeps the
last one silently). Also answers "on which line of which file was this key written?" so that
validation errors elsewhere can point at it (``key_line``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nemo_gym.core.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


def read_yaml_mapping(path: Path, label: str) -> dict[str, Any]:
    """Load a YAML file whose top level must be a mapping (an empty file is ``{}``).

    Raises:
        ConfigError: the file is missing, is not valid YAML, writes a key twice in one mapping,
            or is not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=label) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a YAML file", source=label) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text ({exc.reason})", source=label) from None
    try:
        data = _load_checked(text, label)
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


def _load_checked(text: str, label: str) -> Any:
    """``yaml.safe_load`` that first refuses duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_duplicate_keys(node, label)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def check_duplicate_keys(root: yaml.Node, label: str) -> None:
    """Raise on the first key (in document order) written twice in one mapping.

    Keys brought in by a ``<<`` merge are not checked: they are meant to be overridden.

    Raises:
        ConfigError: naming the dotted key and the lines of both occurrences.
    """
    checked: set[int] = set()

    def visit(node: yaml.Node, path: str) -> None:
        if id(node) in checked:  # an alias of a node already checked
            return
        checked.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                visit(item, f"{path}.{i}" if path else str(i))
            return
        if not isinstance(node, yaml.MappingNode):
            return
        first_line: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            text = str(key_node.value)
            dotted = f"{path}.{text}" if path else text
            line = key_node.start_mark.line + 1
            ident = (key_node.tag, text)
            if ident in first_line:
                raise ConfigError(
                    f"duplicate key: written on line {first_line[ident]} and again on line "
                    f"{line}; keep one of them",
                    source=label,
                    key=dotted,
                    line=line,
                )
            first_line[ident] = line
            visit(value_node, dotted)

    visit(root, "")


@lru_cache(maxsize=64)
def _compose(path: str) -> yaml.Node | None:
    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def key_line(path: str, dotted_key: str, *, exact: bool = False) -> int | None:
    """Return the 1-based line where ``dotted_key`` is written in the YAML file.

    Args:
        path: the YAML file.
        dotted_key: e.g. ``policy_model.responses_api_models.openai_model.openai_api_key``.
        exact: only the whole key counts; otherwise the line of the deepest part found.
    """
    node = _compose(path)
    line: int | None = None
    for part in dotted_key.split("."):
        if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            return None if exact else line
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            return None if exact else line
    return line
