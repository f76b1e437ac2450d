"""``core.memory``: freed heap pages go back to the system, measured by the kernel's count."""

from __future__ import annotations

import asyncio
import os

import pytest

from nemo_gym.core import memory

pytestmark = pytest.mark.skipif(
    memory.heap_free_bytes() is None, reason="needs glibc's malloc_trim and mallinfo2"
)


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fragmented_heap() -> list[bytes]:
    """150 MB of 1 KB blocks (glibc's heap, not Python's small-object arenas), one in 50 kept
    alive: nothing can leave the heap from its top, as after a run's rollouts."""
    blocks = [bytes(1000) + bytes([i % 256]) for i in range(150_000)]
    return blocks[::50]


def test_release_gives_the_free_heap_back() -> None:
    kept = fragmented_heap()
    before = resident_mb()
    free = memory.heap_free_bytes()
    assert free is not None and free > 100 << 20
    assert memory.release_free_heap()
    after = resident_mb()
    assert before - after > 100, (before, after)  # ~145 MB of free pages returned
    assert len(kept) == 3000 and all(len(b) == 1001 for b in kept)  # the live blocks are intact


async def test_the_periodic_release_runs_when_enough_is_free() -> None:
    kept = fragmented_heap()
    before = resident_mb()
    task = asyncio.create_task(memory.release_periodically(interval_s=0.01, min_free_bytes=1))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while resident_mb() > before - 100:
            assert asyncio.get_running_loop().time() < deadline, (before, resident_mb())
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert len(kept) == 3000
