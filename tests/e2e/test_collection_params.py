"""NeMo Gym's collection parameters through the real commands: rows routed by their own
``agent_ref`` (no ``+agent_name``), ``num_repeats`` per agent, ``num_repeats_add_seed``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, ng_run

pytestmark = pytest.mark.e2e
AGENT = "example_single_tool_call_simple_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"


@pytest.fixture(scope="module")
def head_port() -> Iterator[int]:
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url)
        try:
            run.wait_line("servers healthy in", timeout=60)
            yield port
        finally:
            run.stop()


def test_rows_name_their_agent_and_repeats_are_per_agent(head_port: int, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()[:2]]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({**r, "agent_ref": {"name": AGENT}}) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    collect = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={out}",
            f"+num_repeats={{{AGENT}:3,_default:1}}",
            "+num_repeats_add_seed=true",
            f"+head_server.port={head_port}",
        ]
    )
    assert collect.wait(120) == 0, collect.text
    assert "Repeating rows from 2 to 6!" in collect.text
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in written) == [
        (t, i) for t in range(2) for i in range(3)
    ]
    for row in written:
        extra = json.loads(row["responses_create_params"]["metadata"]["extra_body"])
        assert extra == {"seed": row["_ng_rollout_index"]}
        assert row["agent_ref"]["name"] == AGENT and row["_ng_status"] == "completed"


def test_a_row_without_an_agent_is_refused_before_any_work(
    head_port: int, tmp_path: Path
) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text(DATA.read_text().splitlines()[0] + "\n")
    collect = Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}",
            f"+head_server.port={head_port}",
        ]
    )
    assert collect.wait(60) == 2, collect.text
    assert (
        f"{data}: rows 1 name no agent (agent_ref); give +agent_name=... or an agent_ref in "
        "each row" in collect.text
    )
    assert not (tmp_path / "out.jsonl").exists()
