"""Functions the Ray tests offload: each records the process it ran in, then does the real work.

They are imported by name on the Ray workers (this package is on their ``PYTHONPATH``), and
append ``<pid> <ray worker?>`` to the file named by ``GYM_TEST_PID_FILE``, which the test sets
before it starts the cluster (the workers inherit it).
"""

from __future__ import annotations

import os
from typing import Any

from resources_servers.code_gen import app as code_gen
from resources_servers.math_with_judge.library import LibraryVerdict, check_equivalence

PID_FILE = "GYM_TEST_PID_FILE"


def in_ray_worker() -> bool:
    import ray

    return bool(ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE)


def record() -> None:
    with open(os.environ[PID_FILE], "a") as out:
        out.write(f"{os.getpid()} {int(in_ray_worker())}\n")


def where() -> tuple[int, bool]:
    """This process's pid, and whether it is a Ray worker (records nothing)."""
    return os.getpid(), in_ray_worker()


def pid() -> int:
    record()
    return os.getpid()


async def async_pid(offset: int) -> int:
    record()
    return os.getpid() + offset


def fail(message: str) -> None:
    raise ValueError(message)


def recording_check(expected: str, answer: str, timeout_s: float) -> LibraryVerdict:
    record()
    return check_equivalence(expected, answer, timeout_s)


async def recording_run_tests(config: dict[str, Any], code: str, tests: Any) -> Any:
    record()
    return await code_gen._run_tests_on_worker(config, code, tests)
