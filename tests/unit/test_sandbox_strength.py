"""CI fails when code_gen's strongest isolation plan is unavailable where it should work.

code_gen's sandbox falls back to weaker plans (and its isolation tests skip, saying why) on a
machine that cannot unshare namespaces. That is right on a laptop, wrong in CI: there
``scripts/test.sh`` sets ``GYM_REQUIRE_STRONG_SANDBOX=1`` on Linux where user namespaces are
enabled, and this test then requires the strongest plan for the user running the tests
(``root-namespaces`` as root, else ``user-namespace``), with the network unshared.
"""

from __future__ import annotations

import os

import pytest

from resources_servers.code_gen.sandbox import Sandbox
from resources_servers.code_gen.supervisor import Limits

REQUIRED = os.environ.get("GYM_REQUIRE_STRONG_SANDBOX") == "1"


@pytest.mark.skipif(
    not REQUIRED,
    reason="GYM_REQUIRE_STRONG_SANDBOX is not 1 (scripts/test.sh sets it on Linux where user "
    "namespaces are enabled)",
)
async def test_the_strongest_sandbox_plan_is_in_use() -> None:
    limits = Limits(
        wall_seconds=10,
        cpu_seconds=5,
        memory_mb=512,
        max_output_bytes=1 << 16,
        max_file_mb=8,
        max_processes=32,
        tmp_mb=16,
    )
    plan = await Sandbox(limits, max_concurrent=1, uid_base=2_100_000_000).isolation()
    expected = "root-namespaces" if os.geteuid() == 0 else "user-namespace"
    assert plan.plan == expected, (
        f"code_gen's sandbox fell back to {plan.plan!r}, weaker than {expected!r}, on a machine "
        "where namespaces are enabled (the log above says why each stronger plan failed)"
    )
    assert "net" in plan.namespaces
