"""``SessionStore[T]``: per-rollout state keyed by session id, with a time-to-live and a bound.

A server that keeps state for a rollout (``seed_session`` -> tools -> ``verify``) keys it by
``request.session["session_id"]`` (see ``sessions``). A rollout that never reaches ``verify``
(the agent timed out, the model failed, the run was stopped) would leave that state behind
forever in a plain dict; this store drops it instead:

* an entry not used (``get``, ``set``, ``setdefault``) for ``ttl_s`` seconds expires;
* when a new entry would make more than ``max_entries``, the least recently used is evicted.

Expired entries are removed as the store is used (the least recently used first), so a store
costs nothing between requests. Each removal is logged at debug level with its session id; the
1st, 10th, 100th, ... removal for each reason is also logged at warning level with the totals,
so that a store that is too small, or rollouts that never finish, show in the server's log.
``on_evict`` lets the owner react to a removal (not to ``pop``). The clock is injectable for
tests. Neighbours: ``sessions`` (the ids), ``base`` (``SimpleServer.session_store`` builds one
from the server's ``session_ttl_s`` / ``max_sessions`` settings).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, overload

logger = logging.getLogger(__name__)

EvictionReason = Literal["expired", "bound"]

#: An idle rollout's state is kept this long (seconds) by default.
DEFAULT_SESSION_TTL_S = 3600.0
#: At most this many sessions' state is kept by default.
DEFAULT_MAX_SESSIONS = 100_000


class SessionStore[T]:
    """A mapping of session id to ``T`` whose entries expire and whose size is bounded.

    Args:
        ttl_s: an entry unused for this many seconds is removed.
        max_entries: adding an entry beyond this many evicts the least recently used one.
        name: how the log names this store (e.g. ``"weather.counters"``).
        clock: monotonic seconds (``time.monotonic``; injectable for tests).
        on_evict: called with the session id, value and reason of each expired or evicted
            entry.
    """

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_SESSION_TTL_S,
        max_entries: int = DEFAULT_MAX_SESSIONS,
        name: str = "sessions",
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[str, T, EvictionReason], None] | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"session store {name!r}: ttl_s must be > 0, got {ttl_s}")
        if max_entries < 1:
            raise ValueError(f"session store {name!r}: max_entries must be >= 1, got {max_entries}")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.name = name
        self._clock = clock
        self._on_evict = on_evict
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()  # oldest use first
        self.removed: dict[EvictionReason, int] = {"expired": 0, "bound": 0}

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._entries)

    def __contains__(self, session_id: object) -> bool:
        self._expire(self._clock())
        return session_id in self._entries

    @overload
    def get(self, session_id: str) -> T | None: ...
    @overload
    def get(self, session_id: str, default: T) -> T: ...
    def get(self, session_id: str, default: T | None = None) -> T | None:
        """The session's value (and mark it used), else ``default``."""
        entry = self._use(session_id)
        return default if entry is None else entry[0]

    def __getitem__(self, session_id: str) -> T:
        """The session's value; ``KeyError`` when it was never set, popped or removed."""
        entry = self._use(session_id)
        if entry is None:
            raise KeyError(session_id)
        return entry[0]

    def _use(self, session_id: str) -> tuple[T] | None:
        """The session's value in a 1-tuple (``None`` is a value), marked used; else ``None``."""
        now = self._clock()
        self._expire(now)
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        self._entries[session_id] = (now, entry[1])
        self._entries.move_to_end(session_id)
        return (entry[1],)

    def set(self, session_id: str, value: T) -> None:
        """Store the session's value (replacing any), evicting beyond ``max_entries``."""
        now = self._clock()
        self._expire(now)
        self._entries[session_id] = (now, value)
        self._entries.move_to_end(session_id)
        while len(self._entries) > self.max_entries:
            old_id, (_, old) = self._entries.popitem(last=False)
            self._removed(old_id, old, "bound")

    __setitem__ = set

    def setdefault(self, session_id: str, value: T) -> T:
        """The session's value; ``value`` is stored first when it has none."""
        entry = self._use(session_id)
        if entry is not None:
            return entry[0]
        self.set(session_id, value)
        return value

    @overload
    def pop(self, session_id: str) -> T | None: ...
    @overload
    def pop(self, session_id: str, default: T) -> T: ...
    def pop(self, session_id: str, default: T | None = None) -> T | None:
        """Remove the session's value and return it (``default`` when it has none)."""
        self._expire(self._clock())
        entry = self._entries.pop(session_id, None)
        return default if entry is None else entry[1]

    def _expire(self, now: float) -> None:
        deadline = now - self.ttl_s
        while self._entries:
            session_id, (used, value) = next(iter(self._entries.items()))
            if used > deadline:
                return
            del self._entries[session_id]
            self._removed(session_id, value, "expired")

    def _removed(self, session_id: str, value: T, reason: EvictionReason) -> None:
        self.removed[reason] += 1
        count = self.removed[reason]
        logger.debug("session store %s: %s session %s removed", self.name, reason, session_id)
        if _is_power_of_ten(count):
            why = (
                f"unused for {self.ttl_s:g}s"
                if reason == "expired"
                else f"beyond the bound of {self.max_entries} sessions"
            )
            logger.warning(
                "session store %s: %d session(s) removed so far, %s (rollouts that never "
                "reached verify, or a bound too small for the concurrency)",
                self.name,
                count,
                why,
            )
        if self._on_evict is not None:
            self._on_evict(session_id, value, reason)


def _is_power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1
