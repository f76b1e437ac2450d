"""A model upstream that hangs, or closes the connection mid-body: rows fail clearly, resume
finishes them.

The fake OpenAI endpoint holds calls without an answer (``hang_next``) or sends the headers and
half the body and then closes (``cut_next``); see ``nemo_gym.testing.connection_faults``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.support import (
    check_output,
    collect_command,
    fake_faults,
    fake_get,
    read_rows,
    resume,
    write_input,
)
from tests.helpers import Proc, fake_openai_process, free_port, ng_run

pytestmark = pytest.mark.e2e
MODEL_KEY = "+policy_model.responses_api_models.openai_model"


def test_a_hung_upstream_fails_rows_as_timeouts_and_resume_completes_them(
    tmp_path: Path,
) -> None:
    """Three model calls are never answered: with a 1 s per-call deadline exactly three rows
    fail with kind ``timeout`` within it, nothing waits on the held calls, and a resume runs
    those three again once the fake answers."""
    repeats, hung = 8, 3
    with fake_openai_process("--hang-first", str(hung)) as base_url:
        port = free_port()
        run = ng_run(port, base_url, f"{MODEL_KEY}.request_timeout_s=1")
        try:
            run.wait_line("servers healthy in", timeout=60)
            out = tmp_path / "out.jsonl"
            command = collect_command(port, write_input(tmp_path / "in.jsonl"), out, repeats, 4)
            first = Proc(command)
            assert first.wait(60) == 3, first.text  # 3: some rows failed
            rows = read_rows(out)
            assert len(rows) == repeats
            failed = [r for r in rows if r["_ng_status"] == "failed"]
            assert len(failed) == hung == fake_get(base_url, "/fake/stats")["hung"]
            for row in failed:
                assert row["_ng_failure"]["kind"] == "timeout", row["_ng_failure"]
                assert "got no answer within its 1s deadline" in row["_ng_failure"]["message"]
                # The deadline is one call's: the row fails within it (and the tool call and
                # the first model call before it are quick), not after the agent's 900 s.
                assert 1.0 <= row["_ng_elapsed_s"] < 10.0, row["_ng_elapsed_s"]
            again = resume(command)
            assert f"{hung} failed before and tried again" in again.text
            check_output(out, 1, repeats)
            assert fake_get(base_url, "/fake/stats")["hung"] == hung  # none hung on resume
        finally:
            run.stop()


def test_a_body_cut_mid_way_is_retried_or_fails_clearly_and_resume_completes(
    tmp_path: Path,
) -> None:
    """The model server retries a body cut mid-way (the call completes); when every answer is
    cut, rows fail as ``model_error`` saying so (the model server answers 502, never 500), and
    a resume completes them once answers arrive whole."""
    repeats, cut = 6, 2
    with fake_openai_process("--cut-first", str(cut)) as base_url:
        port = free_port()
        run = ng_run(port, base_url, f"{MODEL_KEY}.max_attempts=3")
        try:
            run.wait_line("servers healthy in", timeout=60)
            data = write_input(tmp_path / "in.jsonl")
            # Two cut answers, both retried: every row completes, and the fake saw exactly two
            # more calls than the rollouts make (two model calls each: tool call, answer).
            out = tmp_path / "retried.jsonl"
            first = Proc(collect_command(port, data, out, repeats, 3))
            assert first.wait(60) == 0, first.text
            check_output(out, 1, repeats)
            stats = fake_get(base_url, "/fake/stats")
            assert (stats["cut"], stats["requests"]) == (cut, 2 * repeats + cut)

            fake_faults(base_url, cut_next=-1)  # from now on, every answer is cut
            out = tmp_path / "failed.jsonl"
            command = collect_command(port, data, out, repeats, 3)
            second = Proc(command)
            assert second.wait(60) == 3, second.text
            rows = read_rows(out)
            assert len(rows) == repeats
            for row in rows:
                failure = row["_ng_failure"]
                assert (row["_ng_status"], failure["kind"]) == ("failed", "model_error")
                assert "HTTP 502" in failure["message"], failure
                assert "failed after 3 attempt(s)" in failure["message"], failure
                assert "ClientPayloadError" in failure["message"], failure
            assert "Traceback" not in run.text  # no server raised (an unhandled error is a 500)

            fake_faults(base_url, cut_next=0)
            again = resume(command)
            assert f"{repeats} failed before and tried again" in again.text
            check_output(out, 1, repeats)
        finally:
            run.stop()
