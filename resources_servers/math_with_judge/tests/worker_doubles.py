"""math_with_judge tests: misbehaving functions for the math-verify worker processes.

They live in their own module so that a worker process can import them by name.
"""

from __future__ import annotations

import os
import threading

from resources_servers.math_with_judge.library import LibraryVerdict


def crash(expected: str, answer: str, timeout_s: float) -> LibraryVerdict:
    """The worker process dies (as on a segfault or the OOM killer)."""
    os._exit(3)


def hang(expected: str, answer: str, timeout_s: float) -> LibraryVerdict:
    """Never return and ignore the alarm (as in C code that does not check for signals)."""
    threading.Event().wait()
    raise AssertionError("unreachable")


def explode(expected: str, answer: str, timeout_s: float) -> LibraryVerdict:
    """Raise out of the worker function."""
    raise RuntimeError("sympy blew up")
