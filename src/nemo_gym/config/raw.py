"""Reading a config as written: entries with no interpolation resolved.

OmegaConf resolves ``${...}`` when a value is read; checks of a config that is not resolved yet
(secrets, environment variables, the policy default, unknown command-line keys) need the values
as written. These helpers get them through OmegaConf's public API only (``items_ex`` and
``to_container`` with ``resolve=False``).

Neighbours: ``loader`` (loading and resolving), ``secrets``, ``policy``.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def raw_items(node: DictConfig | ListConfig) -> list[tuple[Any, Any]]:
    """The entries of ``node`` unresolved: nested mappings and lists as config nodes, other
    values as written (``${...}`` and ``???`` included)."""
    if isinstance(node, DictConfig):
        return list(node.items_ex(resolve=False))
    values = OmegaConf.to_container(node, resolve=False)
    assert isinstance(values, list)
    return [(i, node[i] if isinstance(v, (dict, list)) else v) for i, v in enumerate(values)]


def raw_child(node: DictConfig, key: str) -> Any:
    """The entry ``key`` of ``node`` unresolved (see :func:`raw_items`); ``None`` if absent or
    missing (``???``), as OmegaConf's ``in`` answers."""
    return dict(raw_items(node)).get(key) if key in node else None


def raw_value(cfg: DictConfig, dotted_key: str) -> Any:
    """The value at ``a.b.c`` as written; ``None`` if there is none (see :func:`raw_child`)."""
    node: Any = cfg
    for part in dotted_key.split("."):
        if not isinstance(node, DictConfig):
            return None
        node = raw_child(node, part)
    return node
