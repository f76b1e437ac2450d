"""Redacting secrets from configs before they are printed, logged or served.

A value is secret when its key looks like a credential (``*api_key``, ``*token``, ``*secret``,
``*password``, ``authorization`` ...) or when it equals the value of such a key elsewhere in the
config (so an interpolated copy under an innocent name is caught too).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***REDACTED***"
_SECRET_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passwd|credential|authorization|private[_-]?key)",
    re.IGNORECASE,
)


def is_secret_key(key: object) -> bool:
    """Return whether a config key names a credential."""
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def _collect(node: Any, values: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if is_secret_key(k) and isinstance(v, str) and v and not v.startswith("${"):
                values.add(v)
            _collect(v, values)
    elif isinstance(node, list):
        for v in node:
            _collect(v, values)


def redact(config: Any) -> Any:
    """Return a deep copy of a plain config with every secret replaced by ``***REDACTED***``."""
    values: set[str] = set()
    _collect(config, values)

    def walk(node: Any, key: object = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node and (is_secret_key(key) or node in values):
            return REDACTED
        return node

    return walk(config)
