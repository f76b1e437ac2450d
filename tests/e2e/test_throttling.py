"""A 429 storm mid-run loses no row and costs few requests; Ctrl+C with a hung upstream is quick.

Real ng_run on the weather environment, the real ng_collect_rollouts, and the fake OpenAI
endpoint as a process: it either answers every request 429 for a few seconds from the middle
of the run on (a rate-limit storm), or never answers at all (a hung upstream). Request counts
come from the fake itself; the storm-free figure from the rows (each rollout's model calls).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, ng_run, wait_for

pytestmark = pytest.mark.e2e
AGENT = "example_single_tool_call_simple_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"
ROWS = 160


def fake_stats(base_url: str) -> dict[str, Any]:
    url = base_url.removesuffix("/v1") + "/fake/stats"
    with urllib.request.urlopen(url, timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def collect_command(port: int, data: Path, out: Path, parallel: int, *extra: str) -> list[str]:
    return [
        str(BIN / "ng_collect_rollouts"),
        f"+agent_name={AGENT}",
        f"+input_jsonl_fpath={data}",
        f"+output_jsonl_fpath={out}",
        f"+num_samples_in_parallel={parallel}",
        f"+head_server.port={port}",
        *extra,
    ]


def test_a_429_storm_fails_no_row_and_stays_under_one_and_a_half_times_the_requests(
    tmp_path: Path,
) -> None:
    # a fault-free run makes 2 * ROWS requests: the storm starts half-way, lasts 3 s
    storm = ("--storm-after", str(ROWS), "--storm-s", "3")
    with fake_openai_process(*storm) as base_url:
        port = free_port()
        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=60)
            data, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
            data.write_text(DATA.read_text().splitlines()[0] + "\n")
            collect = Proc(collect_command(port, data, out, 16, f"+num_repeats={ROWS}"))
            assert collect.wait(180) == 0, collect.text
            stats = fake_stats(base_url)
        finally:
            run.stop()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == ROWS
    assert [r for r in rows if r["_ng_status"] != "completed"] == []
    assert stats["failed"] > 0 and "upstream throttling" in collect.text  # it did storm
    storm_free = sum(r["_ng_num_steps"] for r in rows)  # one upstream request per model call
    assert storm_free == 2 * ROWS
    assert stats["requests"] <= 1.5 * storm_free, (stats, collect.text)


def test_ctrl_c_with_a_hung_upstream_ends_within_the_grace(tmp_path: Path) -> None:
    grace = 2.0
    with fake_openai_process("--hang") as base_url:
        port = free_port()
        run = ng_run(port, base_url, f"++graceful_shutdown_s={grace}")
        try:
            run.wait_line("servers healthy in", timeout=60)
            data, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
            data.write_text(DATA.read_text().splitlines()[0] + "\n")
            collect = Proc(collect_command(port, data, out, 4, "+num_repeats=4"))
            wait_for(lambda: fake_stats(base_url)["requests"] >= 4, 30, "4 hung model calls")
            collect.interrupt()
            # the collector abandons its rollouts at once (resume runs them): a few seconds
            assert collect.wait(timeout=10) == 130, collect.text
            assert "+resume=true" in collect.text
            run.interrupt()
            # ng_run: the grace it names, plus 2 s for each of three server groups, plus slack
            assert f"grace period {grace:.0f}s" in run.wait_line("grace period", timeout=10)
            assert run.wait(timeout=grace + 3 * 2 + 5) == 0, run.text
        finally:
            run.stop()
