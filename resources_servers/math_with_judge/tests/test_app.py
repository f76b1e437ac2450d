"""math_with_judge: /verify with the symbolic check (math-verify in worker processes).

The judge, served over real HTTP, is tested in ``test_judge.py``. anyio ties its worker
processes to the root task, which under pytest is the test: every test that verifies through
the workers starts one (seconds), so those tests are few and cover several rows each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_gym.authoring import ServerClient
from resources_servers.math_with_judge.app import (
    MathVerifyRequest,
    MathWithJudgeConfig,
    MathWithJudgeServer,
)
from resources_servers.math_with_judge.extraction import extract_answer
from resources_servers.math_with_judge.library import CheckFn, LibraryVerdict, check_equivalence
from resources_servers.math_with_judge.tests import worker_doubles
from tests.helpers import assistant_message as message
from tests.helpers import model_response

DATA = Path(__file__).resolve().parents[1] / "data" / "example.jsonl"
PROMPT = {"input": [{"role": "user", "content": "Solve. Put the answer inside \\boxed{}."}]}


def reasoning(text: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": "rs0", "summary": [{"type": "summary_text", "text": text}]}


def make_server(fn: CheckFn | None = None, **config: Any) -> MathWithJudgeServer:
    cls = MathWithJudgeServer
    if fn is not None:
        cls = type("DoubleServer", (MathWithJudgeServer,), {"library_fn": staticmethod(fn)})
    return cls(
        config=MathWithJudgeConfig(name="math_with_judge", **config),
        server_client=ServerClient({}),
    )


async def post_verify(server: MathWithJudgeServer, row: dict[str, Any]) -> httpx.Response:
    transport = httpx.ASGITransport(app=server.setup_webserver())
    async with httpx.AsyncClient(transport=transport, base_url="http://mwj") as c:
        return await c.post("/verify", json=row)


async def verify(
    expected: Any, output: list[dict[str, Any]], server: MathWithJudgeServer | None = None
) -> dict[str, Any]:
    row = {
        "responses_create_params": PROMPT,
        "expected_answer": expected,
        "response": model_response(output),
    }
    resp = await post_verify(server or make_server(), row)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


EQUIVALENT = [
    ("42", "Adding up, we get $\\boxed{42}$.", "42"),
    ("\\frac{1}{2}", "$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
    ("\\frac12", "\\boxed{0.5}", "0.5"),
    ("0.5", "\\boxed{\\frac12}", "\\frac12"),
    ("\\frac{3}{8}", "The probability is 3/8.", "3/8"),
    ("x^2+2x+1", "\\boxed{(x+1)^2}", "(x+1)^2"),
    ("(x-2)(x-3)", "\\boxed{x^2-5x+6}", "x^2-5x+6"),
    ("5\\sqrt{2}", "\\boxed{\\sqrt{50}}", "\\sqrt{50}"),
    ("[4, \\infty)", "The solution set is \\boxed{[4,\\infty)}", "[4,\\infty)"),
    ("(-3, 3)", "\\boxed{(-3,3)}", "(-3,3)"),
    ("\\{1, 2\\}", "\\boxed{\\{2, 1\\}}", "\\{2, 1\\}"),
    ("42", "The answer is 42.", "42"),
    ("9", "Answer: 9", "9"),
    ("55", "1 + 2 + ... + 10 = 55", "55"),
    ("2", "I first thought \\boxed{3}, but it is \\boxed{2}.", "2"),
    ("1000", "There are \\boxed{1,000} apples.", "1,000"),
    ("5", "$\\boxed 5$", "5"),
    ("3", "\\boxed{\\text{3}}", "\\text{3}"),
]
NOT_EQUIVALENT = [
    ("42", "\\boxed{41}", "41"),
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}", "\\frac{1}{3}"),
    ("[4, \\infty)", "\\boxed{(4, \\infty)}", "(4, \\infty)"),
    ("x^2+2x+1", "\\boxed{(x-1)^2}", "(x-1)^2"),
    ("2", "It is \\boxed{2} or rather \\boxed{3}.", "3"),
    ("42", "The answer is forty-two.", "forty-two"),
]


@pytest.mark.parametrize(("expected", "text", "extracted"), EQUIVALENT)
def test_equivalent_answers_are_extracted_and_accepted(
    expected: str, text: str, extracted: str
) -> None:
    # The same function the worker processes run, called in-process (main thread).
    answer = extract_answer(text)
    assert answer == extracted
    assert check_equivalence(expected, answer, 10.0) == LibraryVerdict(True)


@pytest.mark.parametrize(("expected", "text", "extracted"), NOT_EQUIVALENT)
def test_wrong_answers_are_extracted_and_rejected(expected: str, text: str, extracted: str) -> None:
    answer = extract_answer(text)
    assert answer == extracted
    assert check_equivalence(expected, answer, 10.0) == LibraryVerdict(False)


async def test_verify_scores_answers_in_worker_processes() -> None:
    # Each test has its own root task, so anyio starts worker processes anew: one test covers
    # many rows (a worker start costs seconds), with the failing case named in the message.
    cases = [(e, t, x, 1.0) for e, t, x in EQUIVALENT[:6]] + [
        (e, t, x, 0.0) for e, t, x in NOT_EQUIVALENT[:4]
    ]
    cases.append((55, "\\boxed{55}", "55", 1.0))
    cases.append(("7", "I am not sure.", None, 0.0))
    cases.append(("7", "", None, 0.0))
    cases.append(("2", "Cut off: \\boxed{\\frac{1}{2", None, 0.0))
    server = make_server()
    for expected, text, extracted, reward in cases:
        out = await verify(expected, [message(text)], server)
        case = f"{expected!r} vs {text!r}: {out}"
        assert out["reward"] == reward and out["library_reward"] == reward, case
        assert out["extracted_answer"] == extracted, case
        assert out["expected_answer"] == str(expected), case
        assert out["library_error"] is None and out["judge_evaluations"] is None, case


async def test_empty_output_earns_nothing() -> None:
    out = await verify("7", [])
    assert out["reward"] == 0.0 and out["extracted_answer"] is None


async def test_only_assistant_messages_count_and_reasoning_is_ignored() -> None:
    server = make_server()
    right_in_reasoning = await verify(
        "7", [reasoning("so \\boxed{7}"), message("\\boxed{8}")], server
    )
    wrong_in_reasoning = await verify(
        "7", [reasoning("so \\boxed{8}"), message("\\boxed{7}")], server
    )
    two_messages = await verify("7", [message("Let me think.", 0), message("So 7.", 1)], server)
    assert right_in_reasoning["reward"] == 0.0 and right_in_reasoning["extracted_answer"] == "8"
    assert wrong_in_reasoning["reward"] == 1.0
    assert two_messages["reward"] == 1.0 and two_messages["extracted_answer"] == "7"


async def undecided(expected: str, server: MathWithJudgeServer | None = None) -> str:
    """Verify ``\\boxed{7}`` against ``expected``; assert the row is failed, return the message."""
    row = {
        "responses_create_params": PROMPT,
        "expected_answer": expected,
        "response": model_response([message("\\boxed{7}")]),
    }
    resp = await post_verify(server or make_server(), row)
    assert resp.status_code == 500, resp.text
    error = resp.json()["error"]
    assert error["type"] == "LibraryError" and "could not decide" in error["message"]
    assert "should_use_judge" in error["message"]
    return str(error["message"])


async def test_library_timeout_fails_the_row_instead_of_scoring_zero() -> None:
    message_text = await undecided("7", make_server(library_timeout_s=0.000001))
    assert "timeout:" in message_text


async def test_stuck_worker_is_killed_and_the_row_failed() -> None:
    # A warm worker first, so that the short deadline below is spent in the stuck function.
    assert (await verify("7", [message("\\boxed{7}")]))["reward"] == 1.0
    server = make_server(worker_doubles.hang, library_hard_timeout_s=1.0)
    assert "worker killed" in await undecided("7", server)
    # The killed worker is replaced: the next check works.
    assert (await verify("7", [message("\\boxed{7}")]))["reward"] == 1.0


async def test_exception_in_the_library_fails_the_row() -> None:
    message_text = await undecided("7", make_server(worker_doubles.explode))
    assert "math-verify failed: RuntimeError: sympy blew up" in message_text


async def test_unparseable_gold_answer_fails_the_row() -> None:
    assert "expected_answer" in await undecided("\\frac{")


async def test_dead_worker_makes_verify_fail_instead_of_scoring_zero() -> None:
    row = {
        "responses_create_params": PROMPT,
        "expected_answer": "7",
        "response": model_response([message("\\boxed{7}")]),
    }
    resp = await post_verify(make_server(worker_doubles.crash), row)
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["type"] == "LibraryError" and "worker process died" in error["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expected_answer": None}, "expected_answer"),
        ({"expected_answer": "  "}, "expected_answer"),
        ({"response": {"output": "nope"}}, "response"),
    ],
)
async def test_bad_input_is_rejected_naming_the_field(change: dict[str, Any], field: str) -> None:
    row = {
        "responses_create_params": PROMPT,
        "expected_answer": "7",
        "response": model_response([message("\\boxed{7}")]),
        **change,
    }
    if change.get("expected_answer") is None and "expected_answer" in change:
        del row["expected_answer"]
    resp = await post_verify(make_server(), row)
    assert resp.status_code == 422
    assert field in resp.json()["error"]["message"]


def test_judge_without_a_server_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="judge_model_server"):
        MathWithJudgeConfig(name="m", should_use_judge=True)


def data_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def test_example_rows_are_verify_requests_asking_for_a_box() -> None:
    rows = data_rows()
    assert len(rows) >= 8
    for row in rows:
        request = MathVerifyRequest.model_validate({**row, "response": model_response()})
        assert request.question and request.expected_answer
        assert "\\boxed{}" in json.dumps(row["responses_create_params"]).replace("\\\\", "\\")


async def test_every_example_gold_answer_is_accepted_when_boxed() -> None:
    for row in data_rows():
        out = await verify(
            row["expected_answer"], [message(f"\\boxed{{{row['expected_answer']}}}")]
        )
        assert out["reward"] == 1.0, row
