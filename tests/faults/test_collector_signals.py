"""SIGINT and SIGTERM of ``ng_collect_rollouts`` mid-run, with every rollout in flight stuck on a
model call that is never answered: the collector exits within seconds saying how to resume,
leaves only whole lines, and ``+resume=true`` finishes with nothing lost or duplicated."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.faults.support import (
    check_output,
    collect_command,
    fake_faults,
    fake_get,
    read_rows,
    resume,
    rows_written,
    wait_rows,
    write_input,
)
from tests.helpers import Proc, fake_openai_process, free_port, ng_run, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_collector_exits_promptly_and_resume_finishes(
    signum: signal.Signals, tmp_path: Path
) -> None:
    repeats, parallel = 30, 4
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=60)
            out = tmp_path / "out.jsonl"
            data = write_input(tmp_path / "in.jsonl", "FAKE_SLEEP_0.05 Oslo?")
            command = collect_command(port, data, out, repeats, parallel)
            collect = Proc(command)
            wait_rows(out, 6)
            fake_faults(base_url, hang_next=-1)  # from now on the model never answers
            wait_for(
                lambda: fake_get(base_url, "/fake/stats")["hung"] >= parallel,
                30,
                "every rollout in flight to wait on a hung model call",
            )
            written = rows_written(out)
            started = time.monotonic()
            collect.popen.send_signal(signum)
            assert collect.wait(15) == 130, collect.text
            assert time.monotonic() - started < 5, collect.text
            missing = repeats - written
            assert (
                f"Interrupted: {missing} rollouts were not run; add +resume=true" in collect.text
            )
            rows = read_rows(out)  # whole lines only
            assert len(rows) == written
            assert all(r["_ng_status"] == "completed" for r in rows)

            fake_faults(base_url, hang_next=0, release=True)
            again = resume(command)
            assert f"{written} rows of this run already in {out}, {missing} to run" in again.text
            check_output(out, 1, repeats)
        finally:
            run.stop()
