"""HTTP behaviour environments written for NeMo Gym rely on, with the servers in process.

The three servers here are written the way NeMo Gym's are (``Body()`` parameters, cookies
carried by hand, ``raise_for_status`` / ``get_response_json`` / ``content.read()``): a resources
server keeping a per-session secret, a scripted model, and an agent that replaces its cookies
with ``response.cookies`` after every call and sends no session header. A rollout only scores
1 if the session survives seed -> tools -> verify through cookies alone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseRunRequest,
    BaseSeedSessionRequest,
    BaseSeedSessionResponse,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.base_responses_api_agent import (
    BaseResponsesAPIAgentConfig,
    Body,
    SimpleResponsesAPIAgent,
)
from nemo_gym.base_responses_api_model import BaseResponsesAPIModelConfig, SimpleResponsesAPIModel
from nemo_gym.config_types import ModelServerRef, ResourcesServerRef
from nemo_gym.judge import JudgeError, call_judge, judge_failsafe
from nemo_gym.openai_utils import (
    NeMoGymFunctionCallOutput,
    NeMoGymResponse,
    NeMoGymResponseCreateParamsNonStreaming,
    NeMoGymResponseFunctionToolCall,
    NeMoGymResponseOutputMessage,
    NeMoGymResponseOutputText,
)
from nemo_gym.server.base import create_app
from nemo_gym.server_utils import (
    SESSION_ID_KEY,
    get_response_json,
    raise_for_status,
)
from tests.helpers import InProcess

# ---- a resources server, a model and an agent in NeMo Gym's style -----------------------


class SecretSeed(BaseSeedSessionRequest):
    secret: str


class ReadBody(BaseModel):
    key: str


class SecretServer(SimpleResourcesServer):
    secrets: dict[str, str] = Field(default_factory=dict)

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.post("/read_secret")(self.read_secret)
        app.post("/crash")(self.crash)
        return app

    async def crash(self) -> None:
        raise RuntimeError("the tool crashed")

    async def seed_session(  # type: ignore[override]
        self, request: Request, body: SecretSeed
    ) -> BaseSeedSessionResponse:
        self.secrets[request.session[SESSION_ID_KEY]] = body.secret
        return BaseSeedSessionResponse()

    async def read_secret(self, request: Request, body: ReadBody) -> dict[str, str]:
        if body.key != "vault":
            raise HTTPException(status_code=404, detail=f"no such key: {body.key}")
        secret = self.secrets.get(request.session[SESSION_ID_KEY])
        if secret is None:
            raise HTTPException(status_code=400, detail="session not seeded")
        return {"secret": secret}

    async def verify(  # type: ignore[override]
        self, request: Request, body: BaseVerifyRequest
    ) -> BaseVerifyResponse:
        secret = self.secrets.get(request.session[SESSION_ID_KEY])
        outputs = [o.output for o in body.response.output if o.type == "function_call_output"]
        found = secret is not None and any(secret in str(o) for o in outputs)
        return BaseVerifyResponse(**body.model_dump(), reward=1.0 if found else 0.0)


class ScriptedModel(SimpleResponsesAPIModel):
    """Turn 1 reads a key that does not exist, turn 2 the right one, turn 3 answers."""

    async def responses(
        self,
        body: NeMoGymResponseCreateParamsNonStreaming = Body(),  # noqa: B008
    ) -> NeMoGymResponse:
        assert isinstance(body.input, list)
        done = sum(1 for i in body.input if getattr(i, "type", None) == "function_call_output")
        output: list[Any]
        if done < 2:
            key = "bogus" if done == 0 else "vault"
            output = [
                NeMoGymResponseFunctionToolCall(
                    call_id=f"call_{done}", name="read_secret", arguments=json.dumps({"key": key})
                )
            ]
        else:
            text = NeMoGymResponseOutputText(text="done", annotations=[])
            output = [NeMoGymResponseOutputMessage(id="msg_1", content=[text])]
        return NeMoGymResponse(
            id="resp_1",
            created_at=0.0,
            model="scripted",
            object="response",
            output=output,
            parallel_tool_calls=True,
            tool_choice="auto",
            tools=[],
        )

    async def chat_completions(self, body: dict[str, Any] = Body()) -> Any:  # noqa: B008
        raise HTTPException(status_code=501, detail="not scripted")


class CookieAgentConfig(BaseResponsesAPIAgentConfig):
    resources_server: ResourcesServerRef
    model_server: ModelServerRef


class RunRequest(BaseRunRequest):
    model_config = ConfigDict(extra="allow")


class CookieAgent(SimpleResponsesAPIAgent):
    config: CookieAgentConfig

    async def responses(
        self,
        request: Request,
        response: Response,
        body: NeMoGymResponseCreateParamsNonStreaming = Body(),  # noqa: B008
    ) -> NeMoGymResponse:
        assert isinstance(body.input, list)
        model_cookies: Any = None
        tool_cookies: Any = request.cookies
        outputs: list[Any] = []
        for _ in range(5):
            model_resp = await self.server_client.post(
                server_name=self.config.model_server.name,
                url_path="/v1/responses",
                json=body.model_copy(update={"input": body.input + outputs}),
                cookies=model_cookies,
            )
            await raise_for_status(model_resp)
            model_cookies = model_resp.cookies
            model_response = NeMoGymResponse.model_validate(await get_response_json(model_resp))
            outputs.extend(model_response.output)
            calls = [o for o in model_response.output if o.type == "function_call"]
            if not calls:
                break
            for call in calls:
                tool_resp = await self.server_client.post(
                    server_name=self.config.resources_server.name,
                    url_path=f"/{call.name}",
                    json=json.loads(call.arguments),
                    cookies=tool_cookies,
                )
                tool_cookies = tool_resp.cookies
                output = (await tool_resp.content.read()).decode()
                outputs.append(NeMoGymFunctionCallOutput(call_id=call.call_id, output=output))
        for key, value in (*tool_cookies.items(), *model_cookies.items()):
            response.set_cookie(key, value)
        model_response.output = outputs
        return model_response

    async def run(self, request: Request, body: RunRequest) -> BaseVerifyResponse:
        cookies: Any = request.cookies
        seeded = await self.server_client.post(
            server_name=self.config.resources_server.name,
            url_path="/seed_session",
            json=body.model_dump(),
            cookies=cookies,
        )
        await raise_for_status(seeded)
        cookies = seeded.cookies
        answered = await self.server_client.post(
            server_name=self.config.name,
            url_path="/v1/responses",
            json=body.responses_create_params,
            cookies=cookies,
        )
        await raise_for_status(answered)
        cookies = answered.cookies
        verified = await self.server_client.post(
            server_name=self.config.resources_server.name,
            url_path="/verify",
            json=body.model_dump() | {"response": await get_response_json(answered)},
            cookies=cookies,
        )
        await raise_for_status(verified)
        return BaseVerifyResponse.model_validate(await get_response_json(verified))


@asynccontextmanager
async def nemo_gym_style_servers() -> AsyncIterator[tuple[dict[str, str], InProcess]]:
    """The three servers in process; yield their URLs by instance name and the setup."""
    setup = InProcess()
    client = setup.client
    servers = {
        "tools": SecretServer(config=BaseResourcesServerConfig(name="tools"), server_client=client),
        "policy": ScriptedModel(
            config=BaseResponsesAPIModelConfig(name="policy"), server_client=client
        ),
        "agent": CookieAgent(
            config=CookieAgentConfig(
                name="agent",
                resources_server=ResourcesServerRef(type="resources_servers", name="tools"),
                model_server=ModelServerRef(type="responses_api_models", name="policy"),
            ),
            server_client=client,
        ),
    }
    kinds = {"tools": "resources_servers", "policy": "responses_api_models"}
    kinds["agent"] = "responses_api_agents"
    urls = {name: setup.add(name, kinds[name], s.setup_webserver()) for name, s in servers.items()}
    try:
        yield urls, setup
    finally:
        await client.close()


@asynccontextmanager
async def in_process(app: FastAPI) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """One app in process: its URL and an httpx client that reaches it."""
    setup = InProcess()
    url = setup.add("app", "resources_servers", app)
    async with setup.http() as http:
        yield url, http


ROW = {
    "responses_create_params": {
        "input": [{"role": "user", "content": "Read the vault.", "type": "message"}]
    },
    "secret": "s3same-42",
}


# ---- tests ------------------------------------------------------------------------------


async def test_a_cookie_carrying_agent_keeps_its_session_from_seed_to_verify() -> None:
    async with nemo_gym_style_servers() as (urls, setup), setup.http() as http:
        resp = await http.post(f"{urls['agent']}/run", json=ROW, timeout=30)
    assert resp.status_code == 200, resp.text
    row = resp.json()
    assert row["reward"] == 1.0
    outputs = [
        o["output"] for o in row["response"]["output"] if o["type"] == "function_call_output"
    ]
    # The tool's HTTPException reads to the model exactly as FastAPI's body on NeMo Gym.
    assert outputs[0] == '{"detail":"no such key: bogus"}'
    assert json.loads(outputs[1]) == {"secret": "s3same-42"}


async def test_every_response_sets_the_session_cookie() -> None:
    async with nemo_gym_style_servers() as (urls, setup), setup.http() as http:
        tools = urls["tools"]
        seeded = await http.post(f"{tools}/seed_session", json={"secret": "x"})
        session = seeded.cookies.get("gym_session")
        assert seeded.status_code == 200 and session
        # The client's jar sends back the cookie it was given.
        ok = await http.post(f"{tools}/read_secret", json={"key": "vault"})
        missing = await http.post(f"{tools}/read_secret", json={"key": "nope"})
        invalid = await http.post(f"{tools}/read_secret", json={})
        crashed = await http.post(f"{tools}/crash")
        async with setup.http() as stranger:
            fresh = await stranger.post(f"{tools}/read_secret", json={"key": "vault"})
    assert ok.json() == {"secret": "x"} and ok.cookies.get("gym_session") == session
    assert missing.status_code == 404 and missing.json() == {"detail": "no such key: nope"}
    assert missing.cookies.get("gym_session") == session
    assert invalid.status_code == 422 and invalid.cookies.get("gym_session") == session
    assert crashed.status_code == 500 and crashed.cookies.get("gym_session") == session
    # A request without a session gets a new one (and a 400 here: nothing was seeded for it).
    assert fresh.status_code == 400 and fresh.json() == {"detail": "session not seeded"}
    assert fresh.cookies.get("gym_session") not in (None, session)


async def test_http_exception_keeps_status_headers_and_structured_detail() -> None:
    app = create_app("tools", role="resources_servers")

    @app.post("/limited")
    async def limited() -> None:
        raise HTTPException(429, detail={"reason": "slow down"}, headers={"Retry-After": "3"})

    async with in_process(app) as (url, http):
        resp = await http.post(f"{url}/limited")
    assert resp.status_code == 429 and resp.json() == {"detail": {"reason": "slow down"}}
    assert resp.headers["retry-after"] == "3"


async def test_cookies_and_status_set_on_an_injected_response_are_kept() -> None:
    app = create_app("agent", role="responses_api_agents")

    class Answer(BaseModel):
        ok: bool

    @app.post("/made")
    async def made(response: Response) -> Answer:
        response.set_cookie("resources_cookie", "abc")
        response.status_code = 201
        return Answer(ok=True)

    async with in_process(app) as (url, http):
        resp = await http.post(f"{url}/made")
    assert resp.status_code == 201 and resp.json() == {"ok": True}
    assert resp.cookies.get("resources_cookie") == "abc" and resp.cookies.get("gym_session")


async def test_call_judge_parses_the_answer_and_reports_failures_as_judge_errors() -> None:
    async with nemo_gym_style_servers() as (_, setup):
        client = setup.client
        answer = await call_judge(
            client,
            server_name="policy",
            url_path="/v1/responses",
            json={"input": [{"role": "user", "content": "judge this"}]},
            response_model=NeMoGymResponse,
        )
        failures = []
        for path in ("/v1/chat/completions", "/v1/nowhere"):
            try:
                await call_judge(
                    client,
                    server_name="policy",
                    url_path=path,
                    json={"messages": []},
                    response_model=NeMoGymResponse,
                )
            except JudgeError as exc:
                failures.append(str(exc))
    assert answer.output[0].type == "function_call"
    assert len(failures) == 2
    assert "501" in failures[0] and "not scripted" in failures[0]
    assert "404" in failures[1]


async def test_judge_failsafe_answers_a_failed_judge_as_a_failed_verification() -> None:
    app = create_app("judged", role="resources_servers")

    async def verify(body: BaseVerifyRequest) -> BaseVerifyResponse:
        raise JudgeError("TimeoutError: judge did not answer")

    app.post("/verify")(judge_failsafe(verify))
    row = {
        **ROW,
        "response": NeMoGymResponse(
            id="r",
            created_at=0.0,
            model="m",
            object="response",
            output=[],
            parallel_tool_calls=True,
            tool_choice="auto",
            tools=[],
        ).model_dump(mode="json"),
    }
    async with in_process(app) as (url, http):
        resp = await http.post(f"{url}/verify", json=row)
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["type"] == "JudgeError" and "judge did not answer" in error["message"]


async def test_a_rollout_prefixed_path_reaches_the_route() -> None:
    from nemo_gym.server_utils import apply_rollout_prefix, rollout_path_prefix

    app = create_app("policy", role="responses_api_models")

    @app.post("/v1/responses")
    async def respond(request: Request) -> dict[str, Any]:
        return {"path": request.url.path, "rollout": getattr(request.state, "rollout_id", None)}

    assert rollout_path_prefix("r-7") == "/ng-rollout/r-7"
    assert rollout_path_prefix("r-7", token_capture=True) == (
        "/ng-rollout/r-7/training-token-capture"
    )
    assert (
        rollout_path_prefix(None) == "" and apply_rollout_prefix("http://m/", None) == "http://m/"
    )
    async with in_process(app) as (url, http):
        plain = await http.post(f"{url}/v1/responses")
        prefixed = await http.post(apply_rollout_prefix(url + "/", "r-7") + "/v1/responses")
        capture = await http.post(
            apply_rollout_prefix(url, "r-8", token_capture=True) + "/v1/responses"
        )
        other = await http.post(f"{url}/ng-rollouts/r-7/v1/responses")
    assert plain.json() == {"path": "/v1/responses", "rollout": None}
    assert prefixed.json() == {"path": "/v1/responses", "rollout": "r-7"}
    assert capture.json() == {"path": "/v1/responses", "rollout": "r-8"}
    assert other.status_code == 404
