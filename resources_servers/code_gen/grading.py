"""Run a solution on a task's unit tests and judge each run.

Neighbours: ``app.py`` calls ``grade``; ``sandbox.py`` runs each program; ``call_harness.py``
is the in-sandbox driver for function-call tests. Every test is a separate program run, so
tests cannot leak state into each other and each has its own limits.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from resources_servers.code_gen.sandbox import Sandbox
from resources_servers.code_gen.supervisor import ProgramRun

HARNESS = Path(__file__).with_name("call_harness.py")
Reason = Literal["passed", "wrong_answer", "timeout", "runtime_error", "output_limit", "memory"]


class UnitTests(BaseModel):
    """A task's tests: stdin/stdout pairs, or JSON argument lists and return values."""

    inputs: list[str] = Field(min_length=1)
    outputs: list[str] = Field(min_length=1)
    fn_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> UnitTests:
        if len(self.inputs) != len(self.outputs):
            raise ValueError(
                f"inputs has {len(self.inputs)} items but outputs has {len(self.outputs)}"
            )
        if self.fn_name is not None:
            for i, text in enumerate(self.inputs):
                if not isinstance(_json_or_none(text), list):
                    raise ValueError(f"inputs[{i}] must be a JSON list of arguments")
            for i, text in enumerate(self.outputs):
                try:
                    json.loads(text)
                except ValueError:
                    raise ValueError(f"outputs[{i}] must be a JSON value") from None
        return self


class TestResult(BaseModel):
    """One test's outcome."""

    __test__ = False  # not a pytest class

    passed: bool
    reason: Reason
    exit_code: int | None
    signal: int | None
    stderr_tail: str
    seconds: float


@functools.cache
def harness_source() -> str:
    return HARNESS.read_text(encoding="utf-8")


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def normalise(text: str) -> str:
    """Output as compared: each line without trailing whitespace, no trailing empty lines."""
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n")


def judge(run: ProgramRun, expected: str, call: bool) -> Reason:
    """Why a run passed or failed, checked in this order."""
    if run.output_limited:
        return "output_limit"
    if run.timed_out or run.signal in (signal.SIGXCPU, signal.SIGKILL):
        return "timeout"
    if "MemoryError" in run.stderr_tail:
        return "memory"
    if run.exit_code != 0:
        return "runtime_error"
    got = run.stdout.decode(errors="replace")
    if call:
        value = _json_or_none(got)
        ok = value is not None or got.strip() == "null"
        return "passed" if ok and value == json.loads(expected) else "wrong_answer"
    return "passed" if normalise(got) == normalise(expected) else "wrong_answer"


async def run_test(sandbox: Sandbox, code: str, tests: UnitTests, index: int) -> TestResult:
    """Run test ``index`` in a fresh sandboxed process."""
    if tests.fn_name is None:
        files, argv = {"solution.py": code}, ["solution.py"]
    else:
        files = {"solution.py": code, "call_harness.py": harness_source()}
        argv = ["call_harness.py", tests.fn_name]
    run = await sandbox.run(files, argv, tests.inputs[index].encode())
    reason = judge(run, tests.outputs[index], call=tests.fn_name is not None)
    return TestResult(
        passed=reason == "passed",
        reason=reason,
        exit_code=run.exit_code,
        signal=run.signal,
        stderr_tail=run.stderr_tail[-500:],
        seconds=round(run.seconds, 3),
    )


async def grade(sandbox: Sandbox, code: str, tests: UnitTests) -> list[TestResult]:
    """All tests' results, in order (they run concurrently, bounded by the sandbox's slots)."""
    return list(
        await asyncio.gather(*(run_test(sandbox, code, tests, i) for i in range(len(tests.inputs))))
    )
