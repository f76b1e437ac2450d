"""code_gen: extraction, grading of right and wrong programs, bad input and verifier errors."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_gym.authoring import StartupError
from nemo_gym.resources import final_answer_text
from resources_servers.code_gen import sandbox
from resources_servers.code_gen.app import CodeGenVerifyRequest
from resources_servers.code_gen.extraction import extract_code
from resources_servers.code_gen.grading import normalise
from resources_servers.code_gen.sandbox import candidate_plans
from resources_servers.code_gen.tests.client import (
    SUM_CODE,
    SUM_TESTS,
    client,
    fenced,
    make_server,
    row,
    verify,
)
from tests.helpers import assistant_message as message
from tests.helpers import model_response

DATA = Path(__file__).resolve().parents[1] / "data" / "example.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text().splitlines()]
SOLUTIONS = {
    "sum": SUM_CODE,
    "sort": "input()\nprint(*sorted(map(int, input().split())))\n",
    "fizzbuzz": (
        "for i in range(1, int(input()) + 1):\n"
        "    print('Fizz' * (i % 3 == 0) + 'Buzz' * (i % 5 == 0) or i)\n"
    ),
    "two_sum": (
        "def two_sum(nums, target):\n"
        "    seen = {}\n"
        "    for j, x in enumerate(nums):\n"
        "        if target - x in seen:\n"
        "            return (seen[target - x], j)\n"
        "        seen[x] = j\n"
    ),
    "palindrome": (
        "def is_palindrome(s):\n"
        "    t = [c.lower() for c in s if c.isalnum()]\n"
        "    print('debug output must not count')\n"
        "    return t == t[::-1]\n"
    ),
    "max_profit": (
        "class Solution:\n"
        "    def maxProfit(self, prices: List[int]) -> int:\n"
        "        best, low = 0, math.inf\n"
        "        for p in prices:\n"
        "            low = min(low, p)\n"
        "            best = max(best, p - low)\n"
        "        return best\n"
    ),
}


def test_every_example_row_parses_as_a_verify_request() -> None:
    assert len(ROWS) >= 6
    assert {r["hash_id"] for r in ROWS} == set(SOLUTIONS)
    assert any("fn_name" in r["verifier_metadata"]["unit_tests"] for r in ROWS)
    assert any("fn_name" not in r["verifier_metadata"]["unit_tests"] for r in ROWS)
    for r in ROWS:
        CodeGenVerifyRequest.model_validate({**r, "response": model_response()})
        assert "```python" in r["responses_create_params"]["input"][0]["content"]


@pytest.mark.parametrize("data_row", ROWS, ids=[r["hash_id"] for r in ROWS])
async def test_correct_solutions_of_the_example_rows_pass(data_row: dict[str, Any]) -> None:
    code = SOLUTIONS[data_row["hash_id"]]
    async with client() as c:
        out = await verify(c, fenced(code), data_row["verifier_metadata"]["unit_tests"])
    assert out["reward"] == 1.0, out["test_results"]
    assert out["tests_passed"] == out["tests_total"] == len(out["test_results"])
    assert out["fraction_passed"] == 1.0 and out["failure_reason"] is None
    assert out["extracted_code"] == code and out["isolation"]["plan"]


async def test_a_wrong_program_fails_the_tests_it_gets_wrong() -> None:
    wrong = "a, b = map(int, input().split())\nprint(abs(a) + b)\n"
    async with client() as c:
        out = await verify(c, fenced(wrong))
    assert out["reward"] == 0.0 and out["failure_reason"] == "tests_failed"
    assert [r["reason"] for r in out["test_results"]] == ["passed", "wrong_answer", "passed"]
    assert out["tests_passed"] == 2 and out["fraction_passed"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("code", "unit_tests", "in_stderr"),
    [
        ("raise ValueError('boom')\n", SUM_TESTS, "ValueError: boom"),
        (
            "def other(x):\n    return x\n",
            {"inputs": ["[1]"], "outputs": ["1"], "fn_name": "f"},
            "f",
        ),
        (
            "def f(x):\n    return {x}\n",
            {"inputs": ["[1]"], "outputs": ["[1]"], "fn_name": "f"},
            "set",
        ),
    ],
    ids=["exception", "missing-function", "unserialisable-result"],
)
async def test_a_crashing_program_is_a_runtime_error(
    code: str, unit_tests: dict[str, Any], in_stderr: str
) -> None:
    async with client() as c:
        out = await verify(c, fenced(code), unit_tests)
    assert out["reward"] == 0.0
    assert {r["reason"] for r in out["test_results"]} == {"runtime_error"}
    assert all(in_stderr in r["stderr_tail"] and r["exit_code"] == 1 for r in out["test_results"])


async def test_function_results_compare_as_json() -> None:
    tests = {"inputs": ["[2, 3]", "[0, 0]"], "outputs": ["[2, 3]", "[0, 1]"], "fn_name": "pair"}
    async with client() as c:
        out = await verify(c, fenced("def pair(a, b):\n    return (a, b)\n"), tests)
    assert [r["reason"] for r in out["test_results"]] == ["passed", "wrong_answer"]


@pytest.mark.parametrize(
    ("printed", "reason"),
    [
        ("print('3   ')\nprint()\nprint('')", "passed"),
        ("import sys\nsys.stdout.write('3')", "passed"),
        ("print(' 3')", "wrong_answer"),
        ("print('3\\n4')", "wrong_answer"),
    ],
)
async def test_outputs_compare_without_trailing_whitespace(printed: str, reason: str) -> None:
    tests = {"inputs": [""], "outputs": ["3\r\n"]}
    async with client() as c:
        out = await verify(c, fenced(printed + "\n"), tests)
    assert out["test_results"][0]["reason"] == reason
    assert normalise("a  \r\nb\t\n\n") == "a\nb"


@pytest.mark.parametrize(
    "text",
    [
        "I would add the numbers.",
        "```bash\necho 3\n```",
        "```python\nprint(3)\n",
        "```python\n   \n```",
    ],
    ids=["prose", "other-language", "unclosed", "empty"],
)
async def test_no_python_block_earns_nothing_and_runs_nothing(text: str) -> None:
    async with client() as c:
        out = await verify(c, text)
    assert out["reward"] == 0.0 and out["failure_reason"] == "no_code_block"
    assert out["extracted_code"] is None and out["test_results"] == []
    assert out["tests_passed"] == 0 and out["tests_total"] == 3 and out["isolation"] is None


def test_the_last_python_or_untagged_block_is_the_program() -> None:
    text = (
        "```python\nfirst()\n```\nthen\n~~~\nsecond()\n~~~\n"
        "````py\nthird()\n```\nstill third()\n````\n```text\noutput\n```\n"
    )
    assert extract_code(text) == "third()\n```\nstill third()\n"
    assert extract_code("```Python3\nx = 1\n```") == "x = 1\n"
    assert extract_code("   ```\ny = 2\n   ```") == "y = 2\n"


async def test_only_the_last_message_is_read() -> None:
    reasoning = {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": ""}]}
    output = [message(fenced(SUM_CODE), 0), reasoning, message("No code this time.", 1)]
    body = {**row(""), "response": model_response(output)}
    async with client() as c:
        resp = await c.post("/verify", json=body)
    assert resp.json()["failure_reason"] == "no_code_block"
    request = CodeGenVerifyRequest.model_validate(body)
    assert final_answer_text(request.response) == "No code this time."
    assert final_answer_text(request.response.output[:1]) == fenced(SUM_CODE)


@pytest.mark.parametrize(
    ("unit_tests", "field"),
    [
        ({"inputs": ["1"], "outputs": ["1", "2"]}, "inputs has 1 items but outputs has 2"),
        ({"inputs": [], "outputs": []}, "inputs"),
        ({"inputs": ["1"], "outputs": ["1"], "fn_name": "f"}, "inputs[0] must be a JSON list"),
        ({"inputs": ["[1]"], "outputs": ["nope"], "fn_name": "f"}, "outputs[0] must be a JSON"),
        ({"outputs": ["1"]}, "inputs"),
    ],
)
async def test_bad_unit_tests_are_rejected_naming_the_field(
    unit_tests: dict[str, Any], field: str
) -> None:
    async with client() as c:
        resp = await c.post("/verify", json=row(fenced(SUM_CODE), unit_tests))
    assert resp.status_code == 422 and field in resp.text and "unit_tests" in resp.text


async def test_a_sandbox_that_cannot_run_is_an_http_error_not_a_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox, "LAUNCHER", tmp_path / "missing_launcher.py")
    async with client() as c:
        resp = await c.post("/verify", json=row(fenced(SUM_CODE)))
    assert resp.status_code == 500 and "reward" not in resp.text
    assert "no isolation plan" in resp.text


async def test_the_plan_is_chosen_at_start_up_logged_and_shown_by_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server()
    app = server.setup_webserver()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        assert (await c.get("/health")).json()["sandbox_plan"] is None  # not started yet
        with caplog.at_level(logging.INFO, logger="resources_servers.code_gen.sandbox"):
            async with app.router.lifespan_context(app):
                health = (await c.get("/health")).json()
    names = [p.plan for p in candidate_plans(server.sandbox.limits, os.geteuid() == 0)]
    expected = "root-namespaces" if os.geteuid() == 0 else health["sandbox_plan"]
    assert health["sandbox_plan"] == expected in names and health["status"] == "ok"
    assert health["name"] == "cg" and "uptime_seconds" in health
    assert f"isolation plan {expected} (" in caplog.text
    plan = server.sandbox.plan_name
    assert plan == expected and await server.isolation() == server.sandbox._plan  # no re-probe


async def test_a_server_whose_sandbox_cannot_run_does_not_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox, "LAUNCHER", tmp_path / "missing_launcher.py")
    app = make_server().setup_webserver()
    with pytest.raises(StartupError) as info:
        async with app.router.lifespan_context(app):
            pass
    message = str(info.value)
    assert "'cg'" in message and "no isolation plan can run" in message
    assert "root-namespaces:" in message or "user-namespace:" in message  # each plan's reason
