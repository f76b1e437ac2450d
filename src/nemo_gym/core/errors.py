"""The one error hierarchy of Gym.

    GymError
    ├── ConfigError        a config file, env.yaml or command-line value is wrong (names file/key)
    ├── InputDataError     a JSONL input row is malformed (names file and line)
    └── UpstreamError      an HTTP call to another server failed after bounded retries

Rollout-level failures are not exceptions that escape: they are recorded on the output row
(see ``nemo_gym.rollouts.records``).
"""

from __future__ import annotations


class GymError(Exception):
    """Base class of every error Gym raises on purpose."""


class ConfigError(GymError):
    """A configuration value is missing or wrong.

    Args:
        message: what is wrong and how to fix it.
        source: the file (or ``"command line"``/``"env.yaml"``) the value came from.
        key: the dotted key that is wrong.
        line: 1-based line in ``source`` when known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = source
        self.key = key
        self.line = line
        self.detail = message
        where = ""
        if source:
            where = source + (f":{line}" if line else "")
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class InputDataError(GymError):
    """A row of an input JSONL file cannot be used; names the file and the 1-based line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


class UpstreamError(GymError):
    """An outbound HTTP call failed after its bounded retries.

    Args:
        message: description including the URL.
        status: the last HTTP status, or ``None`` for a connection error or timeout.
        body: the last response body (truncated), if any.
        kind: ``"timeout"``, ``"connection"`` or ``"http"``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        kind: str = "http",
    ) -> None:
        self.status = status
        self.body = body
        self.kind = kind
        super().__init__(message)
