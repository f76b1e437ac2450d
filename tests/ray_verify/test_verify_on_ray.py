"""Verification offloaded to a real local Ray cluster gives the local path's rewards, from a Ray
worker process; without ``verify_on_ray`` Ray is never imported."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from nemo_gym.ray_support.offload import offload
from resources_servers.code_gen import app as code_gen
from resources_servers.code_gen.tests.client import SUM_CODE, fenced
from resources_servers.code_gen.tests.client import client as code_gen_client
from resources_servers.code_gen.tests.client import make_server as make_code_gen
from resources_servers.code_gen.tests.client import verify as code_gen_verify
from resources_servers.math_with_judge.tests.test_app import make_server as make_math
from resources_servers.math_with_judge.tests.test_app import verify as math_verify
from tests.helpers import REPO, assistant_message, wait_for
from tests.ray_verify import doubles
from tests.ray_verify.local_cluster import LOOPBACK, loopback_cluster

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A one-node Ray cluster on 127.0.0.1 started by this process; yields the pid file."""
    import ray

    pids = tmp_path_factory.mktemp("ray") / "pids.txt"
    pids.touch()
    os.environ[doubles.PID_FILE] = str(pids)  # the raylet, hence every worker, inherits it
    ray.init(
        num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="ERROR"
    )
    started = psutil.Process().children(recursive=True)
    try:
        yield pids
    finally:
        ray.shutdown()
        del os.environ[doubles.PID_FILE]
        wait_for(
            lambda: not [p for p in started if p.is_running() and p.status() != "zombie"],
            60,
            "the Ray processes this test started to exit",
        )


def ray_pids(pids: Path) -> list[int]:
    """The pids recorded by functions that ran in a Ray worker (and only those)."""
    lines = [line.split() for line in pids.read_text().splitlines()]
    assert all(flag == "1" for _, flag in lines), lines  # nothing ran outside a worker
    return [int(pid) for pid, _ in lines]


async def test_offload_runs_the_function_in_a_ray_worker(cluster: Path) -> None:
    async def never() -> int:
        raise AssertionError("the local path must not run")

    pid = await offload(doubles.pid, on_ray=True, local=never, timeout_s=120)
    assert pid != os.getpid() and pid in ray_pids(cluster)
    assert await offload(doubles.async_pid, 5, on_ray=True, local=never, timeout_s=120) - 5 in (
        ray_pids(cluster)
    )
    with pytest.raises(ValueError, match="raised on the worker"):
        await offload(doubles.fail, "raised on the worker", on_ray=True, local=never, timeout_s=60)

    async def here() -> int:
        return -1

    assert await offload(doubles.pid, on_ray=False, local=here, timeout_s=1) == -1


async def test_math_symbolic_check_on_ray_scores_as_the_local_check(cluster: Path) -> None:
    rows = [
        ("\\frac12", "\\boxed{0.5}", 1.0),
        ("x^2+2x+1", "\\boxed{(x+1)^2}", 1.0),
        ("42", "\\boxed{41}", 0.0),
    ]
    before = len(ray_pids(cluster))
    on_ray = make_math(doubles.recording_check, verify_on_ray=True)
    local = make_math()
    for expected, text, reward in rows:
        remote = await math_verify(expected, [assistant_message(text)], on_ray)
        here = await math_verify(expected, [assistant_message(text)], local)
        assert (remote["reward"], here["reward"]) == (reward, reward)
        assert remote["extracted_answer"] == here["extracted_answer"]
    assert on_ray._library is None  # the local worker pool was never started
    recorded = ray_pids(cluster)[before:]
    assert len(recorded) == 3 and os.getpid() not in recorded


async def test_code_gen_tests_run_on_ray_with_the_same_results(
    cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code_gen, "_run_tests_on_worker", doubles.recording_run_tests)
    wrong = "a, b = map(int, input().split())\nprint(a - b)\n"
    before = len(ray_pids(cluster))
    results: dict[str, list[dict[str, Any]]] = {}
    for name, server in (
        ("ray", make_code_gen(verify_on_ray=True, timeout_seconds=30.0)),
        ("local", make_code_gen(timeout_seconds=30.0)),
    ):
        async with code_gen_client(server) as c:
            results[name] = [await code_gen_verify(c, fenced(code)) for code in (SUM_CODE, wrong)]
        if name == "ray":
            assert server.sandbox.plan_name is None  # its own sandbox never ran a program
    for remote, here in zip(results["ray"], results["local"], strict=True):
        for key in ("reward", "tests_passed", "tests_total", "failure_reason"):
            assert remote[key] == here[key], key
        assert [r["reason"] for r in remote["test_results"]] == [
            r["reason"] for r in here["test_results"]
        ]
    assert [r["tests_passed"] for r in results["ray"]] == [3, 0]  # 1-2, -5-10, 7-8 all differ
    recorded = ray_pids(cluster)[before:]
    assert len(recorded) == 2 and os.getpid() not in recorded


def test_ray_is_not_imported_on_the_default_path() -> None:
    code = (
        "import sys\n"
        "import nemo_gym.ray_support.offload, resources_servers.math_with_judge.app\n"
        "import resources_servers.code_gen.app\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr


def test_a_server_process_joins_the_cluster_at_the_address_it_is_given() -> None:
    """As in a server started by ng_run: not yet connected, the address from its config."""
    code = (
        "import asyncio, os\n"
        "from nemo_gym.ray_support.offload import offload, ray_address\n"
        "from tests.ray_verify import doubles\n"
        "async def never():\n"
        "    raise AssertionError('local')\n"
        "address = ray_address({'ray_head_node_address': os.environ['ADDRESS']})\n"
        "pid, in_worker = asyncio.run(offload(doubles.where, on_ray=True, local=never,"
        " timeout_s=120, address=address))\n"
        "print(pid, int(in_worker), os.getpid())\n"
    )
    with loopback_cluster() as (address, _):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, **LOOPBACK, "ADDRESS": address},
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    worker, in_worker, driver = map(int, out.stdout.split())
    assert worker != driver and in_worker == 1
