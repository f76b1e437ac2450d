"""Rows NeMo Gym wrote run through Gym's real agent, model server and resources server.

``fixtures/nemo_gym_rows.jsonl`` holds hand-written rows in NeMo Gym's shape (string content
with ``type: "message"``, null parameters, assistant history, part lists, instructions); each
is sent to the simple agent's ``/run`` as a dataset row and must complete, not be rejected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_agent_loop import RunRow, run_row  # noqa: F401 (the fixture)

ROWS = [
    json.loads(line)
    for line in (Path(__file__).parent / "fixtures" / "nemo_gym_rows.jsonl")
    .read_text()
    .splitlines()
]


def _texts(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    def text(content: Any) -> str:
        return content if isinstance(content, str) else "".join(p["text"] for p in content)

    return [(i["role"], text(i["content"])) for i in items]


@pytest.mark.parametrize("index", range(len(ROWS)))
async def test_a_nemo_gym_row_runs_to_completion(run_row: RunRow, index: int) -> None:  # noqa: F811
    row: dict[str, Any] = {k: v for k, v in ROWS[index].items() if k not in ("response", "reward")}
    out = await run_row("", raw=row)
    sent = row["responses_create_params"]["input"]
    assert out["response"]["output"][-1]["type"] == "message"  # accepted: the model answered
    if isinstance(sent, str):
        # The test server's verify reads ``input[-1].content``, which a string input lacks.
        assert out["_ng_failure"]["kind"] == "verifier_error"
        assert "has no attribute 'content'" in out["_ng_failure"]["message"]
        return
    assert out["_ng_failure"] is None, out["_ng_failure"]
    assert out["_ng_status"] == "completed"
    assert out["reward"] == 0.5  # the test server's verify ran on the row
    assert _texts(out["responses_create_params"]["input"]) == _texts(sent)
