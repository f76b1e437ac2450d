"""math_with_judge: the LLM judge, served by a scripted model server over real HTTP on loopback.

The judge server is a small FastAPI app run by uvicorn on 127.0.0.1 (``tests.helpers.serve_app``);
the resources server reaches it through its ``ServerClient`` by instance name, as under ng_run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from nemo_gym.authoring import ServerClient
from resources_servers.math_with_judge.app import MathWithJudgeConfig, MathWithJudgeServer
from resources_servers.math_with_judge.judge import (
    EQUAL_LABEL,
    JUDGE_SYSTEM_MESSAGE,
    NOT_EQUAL_LABEL,
    parse_verdict,
)
from tests.helpers import assistant_message as message
from tests.helpers import free_port, model_response, serve_app

JUDGE = "judge"
QUESTION = "What is six times seven?"
EQUAL = f"Both answers are 42. My final verdict is {EQUAL_LABEL}"
DIFFERENT = f"They differ. My final verdict is {NOT_EQUAL_LABEL}"
HANG = "hang"


class ScriptedJudge:
    """A judge model server answering its script in order: a text, or an HTTP status."""

    def __init__(self, *replies: str | int) -> None:
        self.replies = replies
        self.requests: list[dict[str, Any]] = []
        self.release = asyncio.Event()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/responses")
        async def responses(request: Request) -> JSONResponse:
            self.requests.append(await request.json())
            reply = self.replies[len(self.requests) - 1]
            if reply == HANG:
                await self.release.wait()
            if isinstance(reply, int):
                return JSONResponse({"error": {"message": "scripted"}}, status_code=reply)
            return JSONResponse(model_response([message(reply)]))

        return app

    def prompt(self, n: int) -> str:
        return str(self.requests[n]["input"][1]["content"])


def make_server(port: int, **config: Any) -> MathWithJudgeServer:
    settings = {
        "should_use_judge": True,
        "judge_model_server": {"type": "responses_api_models", "name": JUDGE},
        "judge_responses_create_params": {"input": [], "max_output_tokens": 64},
        **config,
    }
    instances = {JUDGE: {"responses_api_models": {"scripted": {"host": "127.0.0.1", "port": port}}}}
    return MathWithJudgeServer(
        config=MathWithJudgeConfig(name="math_with_judge", **settings),
        server_client=ServerClient(instances),
    )


@asynccontextmanager
async def judge_served(judge: ScriptedJudge) -> AsyncIterator[int]:
    async with serve_app(judge.app()) as url:
        try:
            yield int(urlsplit(url).port or 0)
        finally:
            judge.release.set()


async def post_verify(
    server: MathWithJudgeServer, text: str | None, expected: str = "42"
) -> httpx.Response:
    row = {
        "responses_create_params": {"input": "Solve. Put the answer inside \\boxed{}."},
        "question": QUESTION,
        "expected_answer": expected,
        "response": model_response([message(text)] if text is not None else []),
    }
    transport = httpx.ASGITransport(app=server.setup_webserver())
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://mwj") as c:
            return await c.post("/verify", json=row)
    finally:
        await server.server_client.close()


async def verify_with(judge: ScriptedJudge, text: str | None, **config: Any) -> dict[str, Any]:
    async with judge_served(judge) as port:
        resp = await post_verify(make_server(port, **config), text)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def judge_failure(judge: ScriptedJudge, port: int | None = None, **config: Any) -> str:
    """Verify an answer the library cannot decide; return the 502 error message."""
    async with judge_served(judge) as served_port:
        server = make_server(port or served_port, **config)
        resp = await post_verify(server, "I would say forty two")
    assert resp.status_code == 502, resp.text
    error = resp.json()["error"]
    assert error["type"] == "JudgeError" and f"judge model server {JUDGE!r}" in error["message"]
    return str(error["message"])


async def test_judge_equal_in_both_orders_earns_the_reward() -> None:
    judge = ScriptedJudge(EQUAL, EQUAL)
    out = await verify_with(judge, "The answer is forty-two.")
    assert out["library_reward"] == 0.0 and out["extracted_answer"] == "forty-two"
    assert out["reward"] == 1.0
    assert [e["verdict"] for e in out["judge_evaluations"]] == ["equal", "equal"]
    first, second = judge.prompt(0), judge.prompt(1)
    assert QUESTION in first
    assert first.index("42") < first.index("forty-two")  # gold is assistant A first
    assert second.index("forty-two") < second.index("42")  # then the order is swapped
    assert judge.requests[0]["input"][0] == {"role": "system", "content": JUDGE_SYSTEM_MESSAGE}
    assert judge.requests[0]["max_output_tokens"] == 64  # the base create params are kept
    recorded = out["judge_evaluations"][1]["responses_create_params"]["input"][1]["content"]
    assert recorded == second


async def test_judge_disagreeing_after_the_swap_earns_nothing() -> None:
    judge = ScriptedJudge(EQUAL, DIFFERENT)
    out = await verify_with(judge, "The answer is forty-two.")
    assert out["reward"] == 0.0
    assert [e["verdict"] for e in out["judge_evaluations"]] == ["equal", "not_equal"]


async def test_judge_saying_different_first_is_not_asked_again() -> None:
    judge = ScriptedJudge(DIFFERENT)
    out = await verify_with(judge, "The answer is forty-three.")
    assert out["reward"] == 0.0 and len(judge.requests) == 1
    assert [e["verdict"] for e in out["judge_evaluations"]] == ["not_equal"]


async def test_judge_gets_the_whole_text_when_no_answer_was_extracted() -> None:
    judge = ScriptedJudge(EQUAL, EQUAL)
    out = await verify_with(judge, "Six sevens make forty two")
    assert out["extracted_answer"] is None and out["reward"] == 1.0
    assert "Six sevens make forty two" in judge.prompt(0)


async def test_library_equal_answer_never_calls_the_judge() -> None:
    judge = ScriptedJudge()
    out = await verify_with(judge, "\\boxed{42}")
    assert out["reward"] == 1.0 and out["judge_evaluations"] is None
    assert judge.requests == []


async def test_disabled_judge_leaves_the_library_result() -> None:
    judge = ScriptedJudge(EQUAL, EQUAL)
    out = await verify_with(judge, "The answer is forty-two.", should_use_judge=False)
    assert out["reward"] == 0.0 and out["library_reward"] == 0.0
    assert out["judge_evaluations"] is None and judge.requests == []


async def test_empty_output_is_not_sent_to_the_judge() -> None:
    judge = ScriptedJudge()
    out = await verify_with(judge, None)
    assert out["reward"] == 0.0 and out["judge_evaluations"] is None and judge.requests == []


async def test_judge_http_error_fails_verify() -> None:
    message_ = await judge_failure(ScriptedJudge(500))
    assert "answered HTTP 500" in message_


async def test_judge_failing_on_the_swapped_pass_fails_verify() -> None:
    message_ = await judge_failure(ScriptedJudge(EQUAL, 503))
    assert "answered HTTP 503" in message_


async def test_unreachable_judge_fails_verify() -> None:
    message_ = await judge_failure(ScriptedJudge(), port=free_port())
    assert "could not be reached" in message_


async def test_judge_timeout_fails_verify() -> None:
    message_ = await judge_failure(ScriptedJudge(HANG), judge_timeout_s=0.5)
    assert (
        "could not be reached" in message_ and "got no answer within its 0.5s deadline" in message_
    )


async def test_judge_output_without_a_label_fails_verify() -> None:
    message_ = await judge_failure(ScriptedJudge("They look the same to me."))
    assert "without a verdict label" in message_ and "look the same" in message_


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        (f"verdict: {EQUAL_LABEL}", "equal"),
        (f"verdict: {NOT_EQUAL_LABEL}", "not_equal"),
        (f"not {NOT_EQUAL_LABEL} but {EQUAL_LABEL}", "not_equal"),
        (f"{EQUAL_LABEL} rather than {NOT_EQUAL_LABEL}", "equal"),
        ("[[A = B]] is not a label", None),
        ("", None),
    ],
)
def test_the_first_label_in_the_text_is_the_verdict(text: str, verdict: str | None) -> None:
    assert parse_verdict(text) == verdict
