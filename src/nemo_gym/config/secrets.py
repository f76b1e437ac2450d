"""Redacting secrets from configs and messages before they are printed, logged or served.

A value is secret when its key looks like a credential (``*api_key``, ``key``, ``*_key``,
``*token``, ``*secret``, ``*password``, ``authorization`` ...) or when it came from such a key:
an interpolated copy under an innocent name (``foo: ${policy_api_key}``) or a string built around it
(``url: https://user:${password}@host``) has the secret in it, and that part is replaced too.
:func:`redact` cleans a config; :func:`redact_text` cleans a message (an error, a log line)
given the secret values of the config it came from (:func:`secret_values`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig, ListConfig
from omegaconf.errors import OmegaConfBaseException

from nemo_gym.config.raw import raw_items

REDACTED = "***REDACTED***"
#: Shorter secret values are not searched for inside other text (they would garble it, and a
#: 1-3 character credential protects nothing).
MIN_SECRET_LENGTH = 4
_SECRET_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passwd|credential|authorization|bearer"
    r"|private[_-]?key|(^|[_-])key$)",
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


def secret_values(config: Any) -> set[str]:
    """Every non-empty string value of a credential-named key in a plain (resolved) config."""
    values: set[str] = set()
    _collect(config, values)
    return values


def config_secret_values(cfg: DictConfig) -> set[str]:
    """:func:`secret_values` of a config whose interpolations are not resolved yet.

    Each credential-named value is resolved on its own; one that cannot be resolved is skipped
    (it cannot be shown either).
    """
    values: set[str] = set()

    def visit(node: DictConfig | ListConfig) -> None:
        for key, child in raw_items(node):
            if isinstance(child, (DictConfig, ListConfig)):
                visit(child)
            elif is_secret_key(key):
                try:
                    value = node[key]
                except OmegaConfBaseException:
                    continue
                if isinstance(value, str) and value:
                    values.add(value)

    visit(cfg)
    return values


def redact_text(text: str, values: Iterable[str]) -> str:
    """Replace every occurrence of a secret value in ``text`` by ``***REDACTED***``."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= MIN_SECRET_LENGTH and value in text:
            text = text.replace(value, REDACTED)
    return text


def redact(config: Any, extra_values: Iterable[str] = ()) -> Any:
    """Return a deep copy of a plain config with every secret replaced by ``***REDACTED***``.

    Args:
        config: a plain config (dicts, lists, scalars).
        extra_values: further secret values to replace (e.g. from the config this one came
            from).
    """
    values = secret_values(config) | set(extra_values)

    def walk(node: Any, key: object = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node and (is_secret_key(key) or node in values):
            return REDACTED
        if isinstance(node, str):
            return redact_text(node, values)
        return node

    return walk(config)


def config_for_instance(config: dict[str, Any], name: str) -> tuple[dict[str, Any], set[str]]:
    """The config one server process gets: only the secrets its own section holds.

    Every other secret value (another server's key, a top-level ``policy_api_key`` the instance
    does not use) is replaced by ``***REDACTED***``, so that a resources server never holds the
    model's API key.

    Args:
        config: the whole resolved config.
        name: the instance (top-level key) the process serves.

    Returns:
        The config for the process, and the withheld secret values that an environment variable
        must not hold in the process either (those of :data:`MIN_SECRET_LENGTH` or more).
    """
    own = secret_values(config.get(name))
    withheld = secret_values(config) - own
    if not withheld:
        return config, set()
    kept = {k: (v if k == name else redact(v, withheld)) for k, v in config.items()}
    return kept, {v for v in withheld if len(v) >= MIN_SECRET_LENGTH}


#: Credentials recognisable by their shape, wherever they appear: OpenAI-style keys and bearer
#: tokens. Upstream error bodies sometimes echo the key they were sent.
_TOKEN_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|Bearer\s+[A-Za-z0-9._~+/\-]{16,}=*)")


def redact_upstream_text(text: str, values: Iterable[str] = ()) -> str:
    """``text`` from an upstream (an error body, say) without known secrets or key-like tokens."""
    return _TOKEN_LIKE.sub(REDACTED, redact_text(text, values))
