"""simple_agent: the multi-step tool-calling loop, and one rollout = seed -> loop -> verify.

``POST /v1/responses`` runs the loop: call the model; run every function call it made on the
resources server (in order) and append the outputs; repeat until the model answers without a
tool call, the model's response is truncated, or ``max_steps`` model calls were made.
``POST /run`` runs one rollout for a dataset row and returns the output row.
``POST /aggregate_metrics`` is forwarded to the resources server, whose ``compute_metrics`` /
``get_key_metrics`` know the environment's metrics (as NeMo Gym's simple_agent does).

What goes wrong is recorded, not raised: a tool that fails or is called with bad arguments
answers the model with an error it can react to; a model, tool-server or verifier failure ends
the rollout with ``_ng_status: "failed"`` and a ``_ng_failure`` saying which and why; a rollout
that stops at ``max_steps`` or on a truncated model response is verified and marked
``"truncated"``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import HTTPException, Request
from pydantic import Field, PrivateAttr, ValidationError

from nemo_gym.authoring import (
    SESSION_HEADER,
    SESSION_ID_KEY,
    AggregateMetrics,
    AggregateMetricsRequest,
    BaseResponsesAPIAgentConfig,
    BaseRunRowRequest,
    JSONResponseBytes,
    ModelServerRef,
    NeMoGymResponseCreateParamsNonStreaming,
    ResourcesServerRef,
    RolloutFailure,
    SimpleResponsesAPIAgent,
    UpstreamError,
    failed_row,
    finished_row,
    response_shape_error,
    upstream_answer_error,
    upstream_failure,
    validated_json,
)


class SimpleAgentConfig(BaseResponsesAPIAgentConfig):
    resources_server: ResourcesServerRef
    model_server: ModelServerRef
    max_steps: int = Field(default=16, ge=1, description="Most model calls in one trajectory.")
    model_timeout_s: float = Field(default=900.0, gt=0, description="Deadline of one model call.")
    tool_timeout_s: float = Field(default=300.0, gt=0, description="Deadline of one tool call.")
    verify_timeout_s: float = Field(default=300.0, gt=0, description="Deadline of /verify.")


class Trajectory:
    """The result of the loop: the final response and why it stopped."""

    def __init__(self, response: dict[str, Any], stop: str, steps: int) -> None:
        self.response = response
        self.stop = stop  # "completed" | "max_steps" | "truncated"
        self.steps = steps


class SimpleAgent(SimpleResponsesAPIAgent):
    config: SimpleAgentConfig
    _seed_needed: bool | None = PrivateAttr(default=None)
    _seed_lock: asyncio.Lock = PrivateAttr(default_factory=asyncio.Lock)

    async def responses(self, request: Request) -> Any:
        params = await validated_json(request, NeMoGymResponseCreateParamsNonStreaming)
        try:
            trajectory = await self.trajectory(params, request.session[SESSION_ID_KEY])
        except RolloutFailure as failure:
            raise HTTPException(status_code=502, detail=f"{failure.kind}: {failure}") from None
        return JSONResponseBytes(orjson.dumps(trajectory.response))

    async def run(self, request: Request) -> Any:
        started = time.monotonic()
        row = await validated_json(request, BaseRunRowRequest)
        params = row["responses_create_params"]
        try:
            NeMoGymResponseCreateParamsNonStreaming.model_validate(params)
        except ValidationError as exc:
            failure = RolloutFailure("invalid_input", f"responses_create_params: {exc}")
            return JSONResponseBytes(orjson.dumps(failed_row(row, failure, started)))
        session = uuid.uuid4().hex
        trajectory: Trajectory | None = None
        try:
            await self._seed_session(row, session)
            trajectory = await self.trajectory(params, session)
            verified = await self._verify(row, trajectory.response, session)
        except RolloutFailure as failure:
            partial = trajectory.response if trajectory else failure.partial_response
            return JSONResponseBytes(orjson.dumps(failed_row(row, failure, started, partial)))
        out = finished_row(row, verified, trajectory.stop, trajectory.steps, started)
        return JSONResponseBytes(orjson.dumps(out))

    async def aggregate_metrics_endpoint(self, request: Request) -> Any:
        """The route: the body forwarded to the resources server as received and its answer
        passed back, neither parsed here (a large run's body is 20 MB; the collector checks
        the answer)."""
        name = self.config.resources_server.name
        try:
            resp = await self.server_client.post(
                name,
                "/aggregate_metrics",
                data=await request.body(),
                headers={"Content-Type": "application/json"},
                timeout_s=self.config.verify_timeout_s,
            )
        except UpstreamError as exc:
            raise upstream_failure(exc, source=f"resources server {name!r}") from None
        if not resp.ok:
            raise upstream_answer_error(resp.status, resp.body, source=f"resources server {name!r}")
        return JSONResponseBytes(resp.body)

    async def aggregate_metrics(self, body: AggregateMetricsRequest) -> AggregateMetrics:
        """The resources server's answer to ``/aggregate_metrics``; its failure is answered as
        ``upstream_failure`` / ``upstream_answer_error`` map it, naming the server."""
        name = self.config.resources_server.name
        try:
            resp = await self.server_client.post(
                name, "/aggregate_metrics", json=body, timeout_s=self.config.verify_timeout_s
            )
        except UpstreamError as exc:
            raise upstream_failure(exc, source=f"resources server {name!r}") from None
        if not resp.ok:
            raise upstream_answer_error(resp.status, resp.body, source=f"resources server {name!r}")
        return AggregateMetrics.model_validate(resp.json_sync())

    async def trajectory(self, params: dict[str, Any], session: str) -> Trajectory:
        """Run the model/tool loop for one set of create params."""
        headers = {SESSION_HEADER: session}
        model = self.config.model_server.name
        initial = params.get("input")
        if isinstance(initial, str):
            initial = [{"role": "user", "content": initial}]
        tool_names = {
            t.get("name") for t in params.get("tools") or () if t.get("type") == "function"
        }
        outputs: list[dict[str, Any]] = []
        response: dict[str, Any] = {}
        stop = "max_steps"
        step = 0
        while step < self.config.max_steps:
            step += 1
            request = {**params, "input": [*initial, *outputs]}
            try:
                resp = await self.server_client.post(
                    model,
                    "/v1/responses",
                    json=request,
                    headers=headers,
                    timeout_s=self.config.model_timeout_s,
                )
            except UpstreamError as exc:
                raise RolloutFailure(
                    exc.kind if exc.kind == "timeout" else "model_error",
                    str(exc),
                    step=step,
                    partial=response,
                    outputs=outputs,
                ) from None
            if not resp.ok:
                raise RolloutFailure(
                    # 504: a Gym model server's upstream call passed its deadline
                    "timeout" if resp.status == 504 else "model_error",
                    _error_text(resp.status, resp.body),
                    step=step,
                    partial=response,
                    outputs=outputs,
                )
            try:
                response = resp.json_sync()
            except orjson.JSONDecodeError as exc:
                response, problem = {}, f"not JSON ({exc})"
            else:
                problem = response_shape_error(response)
            if problem is not None:
                raise RolloutFailure(
                    "model_error",
                    f"invalid response from model server: {problem}",
                    step=step,
                    outputs=outputs,
                )
            output = response.get("output") or []
            outputs.extend(output)
            calls = [item for item in output if item.get("type") == "function_call"]
            if not calls:
                if response.get("status") == "incomplete":
                    stop = "truncated"
                    break
                if any(item.get("type") == "message" for item in output):
                    stop = "completed"
                    break
                continue  # e.g. reasoning only: ask again, within max_steps
            for call in calls:
                outputs.append(await self._call_tool(call, tool_names, headers, step, outputs))
        response["output"] = outputs
        return Trajectory(response, stop, step)

    async def _call_tool(
        self,
        call: dict[str, Any],
        tool_names: set[Any],
        headers: dict[str, str],
        step: int,
        outputs: list[dict[str, Any]],
    ) -> dict[str, Any]:
        name = call.get("name") or ""
        result: str
        if name not in tool_names:
            result = _tool_error(
                f"unknown tool {name!r}; available: {sorted(map(str, tool_names))}"
            )
        else:
            try:
                args = orjson.loads(call.get("arguments") or "{}")
            except orjson.JSONDecodeError as exc:
                args, result = None, _tool_error(f"arguments are not valid JSON: {exc}")
            if args is not None and not isinstance(args, dict):
                args, result = None, _tool_error("arguments must be a JSON object")
            if args is not None:
                try:
                    resp = await self.server_client.post(
                        self.config.resources_server.name,
                        "/" + quote(name, safe=""),
                        json=args,
                        headers=headers,
                        timeout_s=self.config.tool_timeout_s,
                    )
                except UpstreamError as exc:
                    raise RolloutFailure(
                        "tool_error", f"tool {name!r}: {exc}", step=step, outputs=outputs
                    ) from None
                result = resp.body.decode("utf-8", errors="replace")
        return {"type": "function_call_output", "call_id": call.get("call_id"), "output": result}

    async def _seed_session(self, row: dict[str, Any], session: str) -> None:
        resources = self.config.resources_server.name
        if self._seed_needed is None:
            async with self._seed_lock:
                if self._seed_needed is None:
                    try:
                        caps = await self.server_client.get(resources, "/capabilities")
                        self._seed_needed = not caps.ok or bool(
                            caps.json_sync().get("seed_session")
                        )
                    except UpstreamError:
                        self._seed_needed = True
        if not self._seed_needed:
            return
        try:
            resp = await self.server_client.post(
                resources,
                "/seed_session",
                json=row,
                headers={SESSION_HEADER: session},
                timeout_s=self.config.tool_timeout_s,
            )
        except UpstreamError as exc:
            raise RolloutFailure("seed_error", str(exc)) from None
        if not resp.ok:
            raise RolloutFailure("seed_error", _error_text(resp.status, resp.body))

    async def _verify(
        self, row: dict[str, Any], response: dict[str, Any], session: str
    ) -> dict[str, Any]:
        try:
            resp = await self.server_client.post(
                self.config.resources_server.name,
                "/verify",
                json={**row, "response": response},
                headers={SESSION_HEADER: session},
                timeout_s=self.config.verify_timeout_s,
            )
        except UpstreamError as exc:
            raise RolloutFailure("verifier_error", str(exc), partial=response) from None
        if not resp.ok:
            raise RolloutFailure(
                "verifier_error", _error_text(resp.status, resp.body), partial=response
            )
        result = resp.json_sync()
        if not isinstance(result, dict) or not isinstance(result.get("reward"), (int, float)):
            raise RolloutFailure(
                "verifier_error", "verify answered without a numeric reward", partial=response
            )
        return result


def _tool_error(message: str) -> str:
    return orjson.dumps({"error": {"type": "ToolCallError", "message": message}}).decode()


def _error_text(status: int, body: bytes) -> str:
    """An error answer in one line: Gym's ``{"error": {type, message}}`` or FastAPI's
    ``{"detail": ...}`` (an ``HTTPException``), else the start of the body."""
    try:
        data = orjson.loads(body)
        err = data.get("error") or {}
        if isinstance(err, dict) and err.get("message"):
            return f"HTTP {status}: {err.get('type', 'error')}: {err['message']}"
        detail = data.get("detail")
        if detail:
            text = detail if isinstance(detail, str) else orjson.dumps(detail).decode()
            return f"HTTP {status}: {text[:1000]}"
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return f"HTTP {status}: {body[:1000].decode(errors='replace')}"


if __name__ == "__main__":
    SimpleAgent.run_webserver()
