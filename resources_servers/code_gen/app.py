"""code_gen: the model writes a Python program; verify runs it on the task's unit tests.

``extraction.py`` finds the program in the final message, ``grading.py`` runs it once per test
through ``sandbox.py`` (isolated subprocesses, never blocking the event loop) and judges each
run. Reward is 1.0 when every test passes. A program that misbehaves (loops, forks, fills the
disk, exhausts memory, floods output) fails its tests; only a sandbox that cannot run programs
at all makes ``/verify`` answer an HTTP error.
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, PrivateAttr

from nemo_gym.authoring import offload, ray_address
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.resources import final_answer_text
from resources_servers.code_gen.extraction import extract_code
from resources_servers.code_gen.grading import TestResult, UnitTests, grade
from resources_servers.code_gen.sandbox import Isolation, Sandbox
from resources_servers.code_gen.supervisor import Limits, SandboxError


class CodeGenConfig(BaseResourcesServerConfig):
    """Limits apply to each test run (one process per test)."""

    max_concurrent_programs: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0, description="wall clock per test")
    cpu_seconds: int | None = Field(default=None, ge=1, description="default: ceil(timeout)")
    memory_mb: int = Field(default=1024, ge=64, description="address space (RLIMIT_AS)")
    max_output_bytes: int = Field(default=8 << 20, ge=1, description="stdout, and stderr")
    max_file_mb: int = Field(default=16, ge=1, description="largest file written")
    max_processes: int = Field(default=32, ge=1, description="processes and threads")
    tmp_mb: int = Field(default=64, ge=1, description="private /tmp tmpfs (root plan)")
    sandbox_uid_base: int = Field(default=2_100_000_000, ge=1, description="slot i: uid base+i")
    require_network_isolation: bool = False
    verify_on_ray: bool = Field(default=False, description="run the tests as Ray tasks")


class CodeGenMetadata(BaseModel):
    unit_tests: UnitTests


class CodeGenVerifyRequest(BaseVerifyRequest):
    verifier_metadata: CodeGenMetadata
    hash_id: str | None = None
    dataset: str | None = None
    source: str | None = None


class CodeGenVerifyResponse(CodeGenVerifyRequest, BaseVerifyResponse):
    extracted_code: str | None
    failure_reason: Literal["no_code_block", "tests_failed"] | None
    tests_passed: int
    tests_total: int
    fraction_passed: float
    test_results: list[TestResult]
    isolation: Isolation | None


class CodeGenServer(SimpleResourcesServer):
    config: CodeGenConfig
    _sandbox: Sandbox = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        cfg = self.config
        limits = Limits(
            wall_seconds=cfg.timeout_seconds,
            cpu_seconds=cfg.cpu_seconds or math.ceil(cfg.timeout_seconds),
            memory_mb=cfg.memory_mb,
            max_output_bytes=cfg.max_output_bytes,
            max_file_mb=cfg.max_file_mb,
            max_processes=cfg.max_processes,
            tmp_mb=cfg.tmp_mb,
        )
        self._sandbox = Sandbox(limits, cfg.max_concurrent_programs, cfg.sandbox_uid_base)

    @property
    def sandbox(self) -> Sandbox:
        return self._sandbox

    async def isolation(self) -> Isolation:
        """The isolation every program gets here (probed once: at start-up, or first use)."""
        isolation = await self.sandbox.isolation()
        if self.config.require_network_isolation and not isolation.blocks_network():
            raise SandboxError("require_network_isolation is set but no plan here blocks it")
        return isolation

    async def on_startup(self) -> None:
        """Choose the isolation plan before serving (it is logged); without one that can run
        programs (or blocks the network, when required) the server does not start. With
        ``verify_on_ray`` the programs run in each Ray worker's sandbox, not here."""
        if not self.config.verify_on_ray:
            await self.isolation()

    def setup_webserver(self) -> FastAPI:
        """The base app, with ``/health`` showing the plan in force as ``sandbox_plan``."""
        app = super().setup_webserver()
        base_health = next(
            r for r in app.router.routes if isinstance(r, APIRoute) and r.path == "/health"
        )
        app.router.routes.remove(base_health)

        @app.get("/health")
        async def get_health() -> dict[str, Any]:
            health: dict[str, Any] = await base_health.endpoint()
            return {**health, "sandbox_plan": self.sandbox.plan_name}

        return app

    async def _run_tests(self, code: str, tests: UnitTests) -> tuple[Isolation, list[TestResult]]:
        """The tests in this server's sandbox, or (``verify_on_ray``) in a Ray task that runs
        the same sandbox, limits and deadlines on its node."""

        async def here() -> tuple[Isolation, list[TestResult]]:
            return await self.isolation(), await grade(self.sandbox, code, tests)

        return await offload(
            _run_tests_on_worker,
            self.config.model_dump(),
            code,
            tests,
            on_ray=self.config.verify_on_ray,
            local=here,
            timeout_s=self.config.timeout_seconds * len(tests.inputs) + 60,
            address=ray_address(self.server_client.global_config_dict),
        )

    async def verify(self, body: CodeGenVerifyRequest) -> CodeGenVerifyResponse:
        tests = body.verifier_metadata.unit_tests
        code = extract_code(final_answer_text(body.response))
        results: list[TestResult] = []
        isolation = None
        if code is not None:
            isolation, results = await self._run_tests(code, tests)
        passed = sum(r.passed for r in results)
        total = len(tests.inputs)
        reward = float(code is not None and passed == total)
        return CodeGenVerifyResponse(
            **body.model_dump(),
            reward=reward,
            extracted_code=code,
            failure_reason=None if reward else "no_code_block" if code is None else "tests_failed",
            tests_passed=passed,
            tests_total=total,
            fraction_passed=passed / total,
            test_results=results,
            isolation=isolation,
        )


async def _run_tests_on_worker(
    config: dict[str, Any], code: str, tests: UnitTests
) -> tuple[Isolation, list[TestResult]]:
    """On a Ray worker: the server's sandbox, built from its config, runs the tests."""
    from resources_servers.code_gen import app  # by name: on the server this file is __main__

    server = app.CodeGenServer.model_construct(config=app.CodeGenConfig.model_validate(config))
    return await server.isolation(), await app.grade(server.sandbox, code, tests)


if __name__ == "__main__":
    CodeGenServer.run_webserver()
