"""math_with_judge: the symbolic check with HF math-verify, run in worker processes.

``check_equivalence`` runs inside a worker process (``anyio.to_process``), never on the server's
event loop: sympy can take seconds on a hostile expression, math-verify's own timeout uses
``SIGALRM`` (main thread only) and a thread that is stuck in C code cannot be stopped, while a
process can be killed. ``LibraryChecker`` bounds the workers and the time, and turns what
happened into a :class:`LibraryVerdict`; ``app`` reads it, ``extraction`` supplies the answer.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import anyio
import anyio.to_process
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LibraryVerdict:
    """What math-verify concluded.

    Attributes:
        equal: the answer is equivalent to the gold answer.
        error: why the library could not decide (exception, timeout, unparseable gold), if so.
            An answer that simply does not parse is "not equal" with no error.
    """

    equal: bool
    error: str | None = None


class LibraryError(Exception):
    """The math-verify worker process could not run (it died): the verifier is broken."""


class _Deadline(BaseException):
    """Raised by the alarm; a BaseException, so math-verify's ``except Exception`` lets it by."""


def _compare(expected: str, answer: str) -> LibraryVerdict:
    gold = parse(
        f"\\boxed{{{expected}}}",
        [LatexExtractionConfig()],
        parsing_timeout=None,  # our own alarm bounds the whole check (see check_equivalence)
        raise_on_error=True,
    )
    gold_unparsed = all(isinstance(g, str) for g in gold)  # [] or only the raw-text fallback
    pred = parse(
        f"\\boxed{{{answer}}}",
        [LatexExtractionConfig(), ExprExtractionConfig()],
        parsing_timeout=None,  # our own alarm bounds the whole check (see check_equivalence)
        raise_on_error=True,
    )
    error: str | None = None
    for g in gold:  # math-verify's own any-of-pairs rule, but keeping the first exception
        for t in pred:
            try:
                if verify(g, t, timeout_seconds=None, raise_on_error=True):
                    return LibraryVerdict(True)
            except Exception as exc:
                error = error or f"math-verify comparison failed: {type(exc).__name__}: {exc}"
    if gold_unparsed:
        error = f"math-verify could not parse expected_answer {expected!r}"
    return LibraryVerdict(False, error)


def check_equivalence(expected: str, answer: str, timeout_s: float) -> LibraryVerdict:
    """Compare ``answer`` with ``expected`` under one deadline (call in a worker's main thread).

    Args:
        expected: the gold answer (LaTeX, without ``\\boxed``).
        answer: the extracted answer.
        timeout_s: the deadline of parsing and comparing together.
    """
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # we report errors ourselves

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise _Deadline

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            return _compare(expected, answer)
        finally:  # disarm inside the outer try: an alarm that fires just now is still caught
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Deadline:
        return LibraryVerdict(False, _timeout_message(timeout_s))
    except Exception as exc:
        return LibraryVerdict(False, f"math-verify failed: {type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGALRM, previous)


def _timeout_message(timeout_s: float) -> str:
    return f"timeout: math-verify took longer than {timeout_s:g}s"


CheckFn = Callable[[str, str, float], LibraryVerdict]


class LibraryChecker:
    """Run a check function in at most ``workers`` worker processes, killing stuck ones.

    Args:
        workers: worker processes at most (also the number of checks running at once).
        timeout_s: the deadline inside the worker (``SIGALRM``).
        hard_timeout_s: after this long the worker is killed (SIGKILL): covers code the alarm
            cannot interrupt and a cold worker start.
        fn: the function run in the worker (tests substitute misbehaving ones).
    """

    def __init__(
        self,
        *,
        workers: int,
        timeout_s: float,
        hard_timeout_s: float,
        fn: CheckFn = check_equivalence,
    ) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.hard_timeout_s = hard_timeout_s
        self.fn = fn
        self._gate: asyncio.Semaphore | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    async def check(self, expected: str, answer: str) -> LibraryVerdict:
        """Compare in a worker process.

        Raises:
            LibraryError: the worker process died.
        """
        if self._gate is None or self._limiter is None:
            self._gate = asyncio.Semaphore(self.workers)
            self._limiter = anyio.CapacityLimiter(self.workers)
        # Queue here, outside the deadline, so that waiting for a free worker never times out.
        async with self._gate:
            try:
                with anyio.fail_after(self.hard_timeout_s):
                    return await anyio.to_process.run_sync(
                        self.fn,
                        expected,
                        answer,
                        self.timeout_s,
                        cancellable=True,
                        limiter=self._limiter,
                    )
            except TimeoutError:
                logger.warning("math-verify worker killed after %ss", self.hard_timeout_s)
                return LibraryVerdict(
                    False, f"timeout: math-verify worker killed after {self.hard_timeout_s:g}s"
                )
            except anyio.BrokenWorkerProcess as exc:
                raise LibraryError(f"the math-verify worker process died: {exc!r}") from exc
            except _Deadline:
                return LibraryVerdict(False, _timeout_message(self.timeout_s))
            except Exception as exc:  # raised by the function in the worker
                return LibraryVerdict(False, f"math-verify failed: {type(exc).__name__}: {exc}")
