"""``SessionStore``: time-to-live, bound, eviction order and its log, on an injected clock."""

from __future__ import annotations

import logging

import pytest

from nemo_gym.server.session_store import EvictionReason, SessionStore, _is_power_of_ten


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(
    clock: Clock, ttl_s: float = 10.0, max_entries: int = 3
) -> tuple[SessionStore[int], list[tuple[str, int, EvictionReason]]]:
    removed: list[tuple[str, int, EvictionReason]] = []
    s: SessionStore[int] = SessionStore(
        ttl_s=ttl_s,
        max_entries=max_entries,
        name="env.counters",
        clock=clock,
        on_evict=lambda k, v, why: removed.append((k, v, why)),
    )
    return s, removed


def test_get_set_pop_and_defaults() -> None:
    s, removed = store(Clock())
    assert s.get("a") is None and s.get("a", 7) == 7 and "a" not in s
    s.set("a", 1)
    s["b"] = 2
    assert s.get("a") == 1 and s["b"] == 2 and len(s) == 2 and "a" in s
    assert s.setdefault("a", 99) == 1 and s.setdefault("c", 3) == 3 and s["c"] == 3
    assert s.pop("a") == 1 and s.pop("a") is None and s.pop("a", -1) == -1
    with pytest.raises(KeyError):
        s["a"]
    assert removed == []  # pop is not an eviction


def test_an_entry_unused_for_the_ttl_expires_and_use_renews_it() -> None:
    clock = Clock()
    s, removed = store(clock, ttl_s=10.0)
    s.set("a", 1)
    s.set("b", 2)
    clock.now += 9.0
    assert s.get("a") == 1  # used at t+9: lives until t+19
    clock.now += 1.0  # t+10: b (set at t) has been unused for exactly the ttl
    assert "b" not in s and s.get("a") == 1
    assert removed == [("b", 2, "expired")]
    clock.now += 9.999  # a was last used at t+10
    assert s.get("a") == 1
    clock.now += 10.0
    assert len(s) == 0
    assert removed == [("b", 2, "expired"), ("a", 1, "expired")]
    assert s.removed == {"expired": 2, "bound": 0}


def test_the_bound_evicts_the_least_recently_used() -> None:
    clock = Clock()
    s, removed = store(clock, ttl_s=100.0, max_entries=3)
    for i, key in enumerate("abc"):
        s.set(key, i)
        clock.now += 1
    assert s.get("a") == 0  # a is now the most recently used: b is the oldest
    s.set("d", 3)
    assert removed == [("b", 1, "bound")]
    s.set("c", 20)  # replacing a value adds no entry
    assert len(s) == 3 and removed == [("b", 1, "bound")]
    s.set("e", 4)  # a was used before c's replacement and d: a goes
    assert removed == [("b", 1, "bound"), ("a", 0, "bound")]
    assert sorted(k for k in "abcde" if k in s) == ["c", "d", "e"]


def test_removals_are_logged_naming_the_store(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    s, _ = store(clock, ttl_s=100.0, max_entries=1)
    with caplog.at_level(logging.DEBUG, logger="nemo_gym.server.session_store"):
        for i in range(12):
            s.set(f"s{i}", i)  # each set after the first evicts the previous one
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(debug) == 11 and debug[0] == "session store env.counters: bound session s0 removed"
    assert len(warnings) == 2  # the 1st and the 10th removal
    assert warnings[0].startswith("session store env.counters: 1 session(s) removed so far")
    assert "beyond the bound of 1 sessions" in warnings[0]
    assert warnings[1].startswith("session store env.counters: 10 session(s) removed so far")


def test_power_of_ten() -> None:
    assert [n for n in range(1, 1001) if _is_power_of_ten(n)] == [1, 10, 100, 1000]


def test_bad_settings_are_rejected_naming_the_store() -> None:
    with pytest.raises(ValueError, match="'x': ttl_s must be > 0"):
        SessionStore(ttl_s=0, name="x")
    with pytest.raises(ValueError, match="'x': max_entries must be >= 1"):
        SessionStore(max_entries=0, name="x")
