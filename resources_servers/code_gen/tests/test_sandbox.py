"""code_gen sandbox: misbehaving programs fail their row, the server stays healthy, and many
verifications run in parallel without blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from resources_servers.code_gen.supervisor import SandboxError
from resources_servers.code_gen.tests.client import (
    FALLBACKS,
    SLEEPER,
    SUM_CODE,
    client,
    fenced,
    gone_within,
    make_server,
    plan_named,
    verify,
)

ONE_TEST = {"inputs": ["1 2\n"], "outputs": ["3\n"]}



@pytest.fixture
async def c() -> AsyncIterator[httpx.AsyncClient]:
    async with client() as c:
        yield c


async def misbehave(c: httpx.AsyncClient, code: str) -> dict[str, Any]:
    """Verify a misbehaving program, then check the same server still grades a good one."""
    out: dict[str, Any] = await verify(c, fenced(code), ONE_TEST)
    assert out["reward"] == 0.0 and out["failure_reason"] == "tests_failed"
    after = await verify(c, fenced(SUM_CODE))
    assert after["reward"] == 1.0, after["test_results"]
    assert (await c.get("/health")).status_code == 200
    return dict(out["test_results"][0])


async def test_an_infinite_loop_times_out(c: httpx.AsyncClient) -> None:
    result = await misbehave(c, "while True:\n    pass\n")
    assert result["reason"] == "timeout"


async def test_a_sleeping_program_is_stopped_by_the_wall_clock(c: httpx.AsyncClient) -> None:
    result = await misbehave(c, "import time\ntime.sleep(60)\nprint(3)\n")
    assert result["reason"] == "timeout" and result["signal"] is None


async def test_a_fork_bomb_is_bounded_and_leaves_nothing_behind(c: httpx.AsyncClient) -> None:
    marker = f"fork-bomb-{secrets.token_hex(8)}"  # a unique argument of every forked process
    bomb = (
        "import os, sys\n"
        "forked = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', {SLEEPER!r}, '{marker}'])\n"
        "    forked += 1\n"
        "print('forked', forked, file=sys.stderr, flush=True)\n"
        "while True:\n"
        "    os.wait()\n"
    )
    result = await misbehave(c, bomb)
    assert result["reason"] == "timeout"
    forked = int(result["stderr_tail"].split()[-1])
    assert 0 < forked < 16  # RLIMIT_NPROC stopped it, and the sandbox allows some processes
    assert await asyncio.to_thread(gone_within, marker, 10.0)


async def test_writing_a_huge_file_fails_at_the_file_size_limit(c: httpx.AsyncClient) -> None:
    code = (
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(1024):\n"
        "        f.write(b'x' * (1 << 20))\n"
    )
    result = await misbehave(c, code)
    assert result["reason"] == "runtime_error" and "File too large" in result["stderr_tail"]


async def test_a_memory_bomb_is_a_memory_failure(c: httpx.AsyncClient) -> None:
    result = await misbehave(c, "blocks = [bytearray(1 << 28) for _ in range(64)]\n")
    assert result["reason"] == "memory" and "MemoryError" in result["stderr_tail"]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
async def test_printing_gigabytes_hits_the_output_limit(c: httpx.AsyncClient, stream: str) -> None:
    code = f"import sys\nchunk = 'x' * 65536\nwhile True:\n    sys.{stream}.write(chunk)\n"
    result = await misbehave(c, code)
    assert result["reason"] == "output_limit"


async def test_the_environment_is_scrubbed(
    c: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE_GEN_SECRET", "hunter2")
    assert os.environ["CODE_GEN_SECRET"] == "hunter2"
    # Python itself sets LC_CTYPE when it coerces the C locale to UTF-8 (PEP 538).
    code = "import os\nprint(sorted(k for k in os.environ if k != 'LC_CTYPE'))\n"
    out = await verify(c, fenced(code), {"inputs": [""], "outputs": ["[]"]})
    assert out["reward"] == 1.0, out["test_results"]


async def test_the_network_is_unreachable_when_namespaces_work(c: httpx.AsyncClient) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from here
        code = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('connected')\n"
            "except OSError:\n"
            "    print('blocked')\n"
        )
        out = await verify(c, fenced(code), {"inputs": [""], "outputs": ["blocked"]})
    if "net" not in out["isolation"]["namespaces"]:
        pytest.skip(f"this machine cannot unshare the network ({out['isolation']['plan']})")
    assert out["reward"] == 1.0, out["test_results"]


async def test_the_isolation_applied_is_recorded(c: httpx.AsyncClient) -> None:
    code = "import os\nprint(os.getcwd() != '/', os.getuid() >= 2_100_000_000)\n"
    out = await verify(c, fenced(code), {"inputs": [""], "outputs": [f"True {os.geteuid() == 0}"]})
    iso = out["isolation"]
    assert out["reward"] == 1.0, out["test_results"]
    assert iso["empty_environment"] and iso["python_isolated_mode"]
    assert iso["rlimits"]["RLIMIT_CPU"] == 2 and iso["rlimits"]["RLIMIT_AS"] == 512 << 20
    if os.geteuid() == 0:
        assert iso["plan"] == "root-namespaces" and iso["unprivileged_uid"]


async def test_64_parallel_verifications_while_health_answers() -> None:
    server = make_server()
    wrong = "a, b = map(int, input().split())\nprint(a - b)\n"
    async with client(server) as c:
        jobs = [verify(c, fenced(SUM_CODE if i % 2 else wrong), ONE_TEST) for i in range(64)]
        batch = asyncio.ensure_future(asyncio.gather(*jobs))
        answered_while_busy = 0
        while not batch.done():
            health = await c.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            answered_while_busy += not batch.done()
            await asyncio.wait({batch}, timeout=0.05)
        outs = await batch
    assert answered_while_busy >= 1
    assert [o["reward"] for o in outs] == [float(i % 2) for i in range(64)]
    assert server.sandbox._slots.qsize() == server.config.max_concurrent_programs


def _workdirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("code_gen_*")}


@pytest.mark.parametrize("plan_name", FALLBACKS)
async def test_the_fallback_plans_run_and_bound_programs(plan_name: str) -> None:
    sandbox = make_server().sandbox
    plan = plan_named(sandbox, plan_name)
    before = _workdirs()
    try:
        run = await sandbox._run_with_slot(plan, {"solution.py": SUM_CODE}, ["solution.py"], b"2 3")
    except SandboxError as exc:
        pytest.skip(f"plan {plan_name} does not work on this machine: {exc}")
    loop = await sandbox._run_with_slot(plan, {"s.py": "while True:\n    pass\n"}, ["s.py"], b"")
    assert run.stdout == b"5\n" and run.exit_code == 0
    assert loop.timed_out or loop.signal is not None
    assert _workdirs() == before  # removed even after the launcher was stopped on timeout
