"""When a server dies while ``ng_run`` serves: whether to start it again, and when.

A run of 100,000 rollouts must outlive one crashed server. :class:`RestartPolicy` allows each
server ``max_restarts`` restarts within ``window_s`` seconds, waiting ``backoff_s`` doubled on
each restart in the window (capped at ``max_backoff_s``); a server that keeps dying is given up
on and ``ng_run`` stops, naming it. :func:`exit_cause` says how a process ended, for the log.
Used by ``supervisor.py``; the respawn itself is ``children.spawn_child`` (``launcher.py``).
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field


def exit_cause(code: int | None) -> str:
    """``exited with code 3`` / ``was killed by SIGKILL``."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class RestartPolicy:
    """Bounded restarts with exponential backoff (see the module docstring)."""

    max_restarts: int = 5
    window_s: float = 300.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    _history: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def next_delay(self, name: str, now: float | None = None) -> float | None:
        """Seconds to wait before restarting ``name``, or None when it is given up on."""
        now = time.monotonic() if now is None else now
        recent = self._history[name]
        while recent and now - recent[0] > self.window_s:
            recent.popleft()
        if len(recent) >= self.max_restarts:
            return None
        recent.append(now)
        delay: float = min(self.backoff_s * 2.0 ** (len(recent) - 1), self.max_backoff_s)
        return delay
