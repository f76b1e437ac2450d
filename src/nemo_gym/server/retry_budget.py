"""How much retrying an upstream may take, how long a server asks to be left alone, and how
often upstreams throttle.

:class:`RetryBudget` keeps, per upstream (``host:port``), the requests and retries of the last
``window_s`` seconds in one-second buckets, and allows a retry while the window's retries stay
under ``min_retries + ratio * requests``. A budget that grew with a client's lifetime would let
a long healthy warm-up pay for a retry storm later; a window forgets. With the default ratio
(0.5), a dead or rate-limiting upstream sees at most about 1.5 times the requests it would see
without retries, while the retries that random errors need (25% of calls failing once cost 0.33
retries per call) are never starved. :func:`retry_after_s` reads ``Retry-After`` in both of its
forms, and ignores anything else (the caller's own backoff applies). Used by ``http_client.py``.

The budget also counts, over the client's life, the answers upstream APIs gave and how many
were throttling (:func:`is_throttling`: 429, or 503 with ``Retry-After``): the
:class:`UpstreamCounts` every server reports in ``GET /health``, which the collector's
concurrency governor (``nemo_gym.rollouts.governor``) reads.
"""

from __future__ import annotations

import email.utils
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC

from pydantic import BaseModel, Field

#: Statuses by which an upstream says "too much, slow down" (503 only with ``Retry-After``).
THROTTLE_STATUS = 429


class UpstreamCounts(BaseModel):
    """Answers received from upstreams since the process started, and the throttling ones."""

    answers: int = Field(default=0, ge=0)
    throttled: int = Field(default=0, ge=0)


def is_throttling(status: int, retry_after: str | None) -> bool:
    """Whether an answer asks the caller to slow down: 429, or 503 with ``Retry-After``."""
    return status == THROTTLE_STATUS or (status == 503 and bool(retry_after))


@dataclass
class _Window:
    buckets: deque[list[int]] = field(default_factory=deque)  # [second, requests, retries]
    requests: int = 0
    retries: int = 0

    def advance(self, second: int, span: int) -> None:
        while self.buckets and self.buckets[0][0] <= second - span:
            _, requests, retries = self.buckets.popleft()
            self.requests -= requests
            self.retries -= retries
        if not self.buckets or self.buckets[-1][0] != second:
            self.buckets.append([second, 0, 0])


class RetryBudget:
    """Retries allowed per upstream over a sliding window (see the module docstring)."""

    def __init__(
        self,
        ratio: float = 0.5,
        min_retries: int = 10,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_retries = min_retries
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self.counts = UpstreamCounts()

    def _window(self, upstream: str) -> _Window:
        window = self._windows.get(upstream)
        if window is None:
            window = self._windows[upstream] = _Window()
        window.advance(int(self._clock()), max(1, int(self.window_s)))
        return window

    def record_request(self, upstream: str = "") -> None:
        window = self._window(upstream)
        window.buckets[-1][1] += 1
        window.requests += 1

    def record_answer(self, throttled: bool) -> None:
        """Count one answer of an upstream (not a Gym server), throttling or not."""
        self.counts.answers += 1
        self.counts.throttled += throttled

    def try_spend(self, upstream: str = "") -> bool:
        """Take one retry from ``upstream``'s budget; False when it is spent."""
        window = self._window(upstream)
        if window.retries >= self.min_retries + self.ratio * window.requests:
            return False
        window.buckets[-1][2] += 1
        window.retries += 1
        return True


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: delay-seconds or an HTTP date; else None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, parsed.timestamp() - current)
