"""``/aggregate_metrics`` and the collector's metrics, checked against numbers computed by hand.

The scored rollouts used throughout (two tasks, three rollouts each; reward, extracted answer):

    task 0: (1, "4"), (0, "5"), (1, "4")      reward_components.format 1.0
    task 1: (0, "x"), (0, "y"), (1, "z")      reward_components.format 0.5

By hand: mean reward 3/6 = 0.5, its sample std sqrt(6 * 0.25 / 5) = sqrt(0.3), median 0.5;
task 0 mean 2/3 with std sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3); format mean 0.75.
pass@1 = mean(2/3, 1/3) = 50%; pass@2 = mean(1 - C(1,2)/C(3,2), 1 - C(2,2)/C(3,2)) =
mean(1, 2/3) = 83.33%; pass@3 = 100%; majority@3 = mean(1 ["4" twice], (0+0+1)/3 [3-way tie]) =
66.67%; majority@2 = mean((1+0)/2, (0+0)/2) = 25%; majority@1 = mean(1, 0) = 50%.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi import Request

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.base_responses_api_agent import (
    BaseResponsesAPIAgentConfig,
    SimpleResponsesAPIAgent,
)
from nemo_gym.config_types import ModelServerRef, ResourcesServerRef
from nemo_gym.head.client import ServerClient
from nemo_gym.reward_profile import compute_pass_majority_metrics, highest_k_metrics
from nemo_gym.rollouts.aggregate import AggregateMetrics, AggregateMetricsRequest, aggregate_metrics
from nemo_gym.rollouts.metrics import MetricsReport, by_agent, collect_metrics, metrics_path
from nemo_gym.rollouts.summary import summarise
from responses_api_agents.simple_agent.app import SimpleAgent, SimpleAgentConfig
from tests.helpers import InProcess, asgi_client, assistant_message, model_response

OUTCOMES = [[(1.0, "4"), (0.0, "5"), (1.0, "4")], [(0.0, "x"), (0.0, "y"), (1.0, "z")]]
FORMAT = [1.0, 0.5]
USAGE = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}


def verify_responses() -> list[dict[str, Any]]:
    return [
        {
            "_ng_task_index": t,
            "_ng_rollout_index": r,
            "_ng_elapsed_s": 9.0 + r,  # Gym's bookkeeping: never a metric
            "reward": reward,
            "extracted_answer": answer,
            "reward_components": {"correct": reward, "format": FORMAT[t]},
            "judge": "ok",  # not a number: ignored
            "response": {"usage": {"output_tokens": 10 * (r + 1), "input_tokens_details": {}}},
        }
        for t, task in enumerate(OUTCOMES)
        for r, (reward, answer) in enumerate(task)
    ]


class MathLikeServer(SimpleResourcesServer):
    """Metrics hooks written as NeMo Gym's environments write them (plain methods)."""

    config: BaseResourcesServerConfig
    seen: ClassVar[list[list[tuple[int, int]]]] = []

    async def verify(self, body: BaseVerifyRequest) -> BaseVerifyResponse:
        raise NotImplementedError

    def compute_metrics(self, tasks: list[list[dict[str, Any]]]) -> dict[str, Any]:
        self.seen[:] = [[(r["_ng_task_index"], r["_ng_rollout_index"]) for r in t] for t in tasks]
        metrics = compute_pass_majority_metrics(tasks, answer_key="extracted_answer")[0]
        metrics["per_task_metrics"] = [
            {"_ng_task_index": t[0]["_ng_task_index"], "solved_any": max(r["reward"] for r in t)}
            for t in tasks
        ]
        return metrics

    def get_key_metrics(self, agent_metrics: dict[str, Any]) -> dict[str, Any]:
        key = {"mean/reward": agent_metrics["mean/reward"]}
        key.update(highest_k_metrics(agent_metrics, "pass@{k}", exclude_names=["no_answer"]))
        key.update(highest_k_metrics(agent_metrics, "majority@{k}", exclude_names=["no_answer"]))
        return key


def math_server(client: ServerClient | None = None) -> MathLikeServer:
    return MathLikeServer(
        config=BaseResourcesServerConfig(name="math"), server_client=client or ServerClient({})
    )


async def test_baseline_statistics_match_hand_computation() -> None:
    result = await aggregate_metrics(verify_responses())
    m = result.agent_metrics
    assert m["mean/reward"] == 0.5 and m["median/reward"] == 0.5
    assert m["min/reward"] == 0.0 and m["max/reward"] == 1.0
    assert m["std/reward"] == pytest.approx(math.sqrt(0.3), abs=1e-12)
    assert m["mean/reward_components/format"] == 0.75
    assert m["mean/reward_components/correct"] == 0.5
    assert m["mean/output_tokens"] == 20.0  # response.usage, (10+20+30) * 2 / 6
    assert m["std/output_tokens"] == pytest.approx(math.sqrt(80.0), abs=1e-12)  # 4 * 100 / 5
    assert not any("_ng_" in k or "judge" in k or "details" in k for k in m)
    assert result.key_metrics == {k: v for k, v in m.items() if k.startswith("mean/")}
    first, second = result.group_level_metrics
    assert first["_ng_task_index"] == 0 and first["num_rollouts"] == 3
    assert first["mean/reward"] == pytest.approx(2 / 3, abs=1e-12)
    assert first["std/reward"] == pytest.approx(math.sqrt(1 / 3), abs=1e-12)
    assert second["mean/reward"] == pytest.approx(1 / 3, abs=1e-12)
    single = await aggregate_metrics([{"_ng_task_index": 4, "reward": 0.25}])
    assert single.group_level_metrics == [
        {"_ng_task_index": 4, **{f"{s}/reward": 0.25 for s in ("mean", "max", "min", "median")}}
        | {"std/reward": 0.0, "num_rollouts": 1}
    ]
    assert (await aggregate_metrics([])).model_dump() == {
        "group_level_metrics": [],
        "agent_metrics": {},
        "key_metrics": {},
    }


async def test_every_task_shares_the_same_metric_name_strings() -> None:
    # 16,384 tasks each made their own copy of some twenty "<stat>/<field>" strings (48 MB)
    result = await aggregate_metrics(verify_responses())
    first, second = result.group_level_metrics
    assert list(first) == list(second)
    shared = [a for a, b in zip(first, second, strict=True) if a is b]
    assert shared == list(first)
    agent_keys = {k: k for k in result.agent_metrics}
    assert all(agent_keys[k] is k for k in first if "/" in k)
    # built without validation, it still serialises as the model says
    assert type(result).model_validate(result.model_dump()) == result


async def test_a_resources_servers_hooks_answer_its_route() -> None:
    server = math_server()
    rows = verify_responses()
    async with asgi_client(server) as http:
        resp = await http.post("/aggregate_metrics", json={"verify_responses": rows[::-1]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # tasks come in task order, each task's rollouts in the order sent
    assert server.seen == [[(0, 2), (0, 1), (0, 0)], [(1, 2), (1, 1), (1, 0)]]
    assert body["key_metrics"] == pytest.approx(
        {"mean/reward": 0.5, "pass@3/accuracy": 100.0, "majority@3/accuracy": 100 * 2 / 3}
    )
    metrics = body["agent_metrics"]
    assert metrics["pass@1/accuracy"] == pytest.approx(50.0)
    assert metrics["pass@2/accuracy"] == pytest.approx(100 * 5 / 6)
    assert metrics["mean/reward"] == 0.5  # the baseline is kept beside the hook's metrics
    assert [g["solved_any"] for g in body["group_level_metrics"]] == [1.0, 1.0]
    assert "per_task_metrics" not in metrics


async def test_the_route_checks_the_bodys_shape_and_names_where_it_is_wrong() -> None:
    async with asgi_client(math_server()) as http:
        not_object = await http.post("/aggregate_metrics", json={"verify_responses": [{}, 3]})
        not_list = await http.post("/aggregate_metrics", json={"verify_responses": {"a": 1}})
        not_json = await http.post("/aggregate_metrics", content=b"{nope")
    assert not_object.status_code == 422
    assert ["body", "verify_responses", 1] in [e["loc"] for e in not_object.json()["detail"]]
    assert not_list.status_code == 422 and "must be a list" in not_list.text
    assert not_json.status_code == 422 and "invalid JSON" in not_json.text


class NeMoGymStyleServer(MathLikeServer):
    """Overrides the route itself with FastAPI parameters: mounted as it is."""

    async def aggregate_metrics(  # type: ignore[override]
        self, request: Request, body: AggregateMetricsRequest
    ) -> AggregateMetrics:
        return AggregateMetrics(agent_metrics={"path": request.url.path})


async def test_an_override_with_its_own_parameters_keeps_fastapis_reading() -> None:
    server = NeMoGymStyleServer(
        config=BaseResourcesServerConfig(name="math"), server_client=ServerClient({})
    )
    async with asgi_client(server) as http:
        resp = await http.post("/aggregate_metrics", json={"verify_responses": []})
    assert resp.status_code == 200 and resp.json()["agent_metrics"] == {
        "path": "/aggregate_metrics"
    }


async def test_a_hook_returning_something_else_is_an_error_naming_it() -> None:
    def bad(tasks: Any) -> Any:
        return [1, 2]

    with pytest.raises(TypeError, match="compute_metrics must return a dict, not list"):
        await aggregate_metrics(verify_responses(), compute_metrics=bad)
    with pytest.raises(TypeError, match=r"per_task_metrics\[0\] must be a dict"):
        await aggregate_metrics(
            verify_responses(), compute_metrics=lambda t: {"per_task_metrics": [{"x": 1}]}
        )


@asynccontextmanager
async def agent_and_resources() -> AsyncIterator[ServerClient]:
    setup = InProcess()
    client = setup.client
    agent = SimpleAgent(
        config=SimpleAgentConfig(
            name="agent",
            resources_server=ResourcesServerRef(type="resources_servers", name="math"),
            model_server=ModelServerRef(type="responses_api_models", name="policy"),
        ),
        server_client=client,
    )
    setup.add("math", "resources_servers", math_server(client).setup_webserver())
    setup.add("agent", "responses_api_agents", agent.setup_webserver())
    try:
        yield client
    finally:
        await client.close()


async def test_simple_agent_forwards_to_its_resources_server_and_the_file_entry_is_nemo_gyms() -> (
    None
):
    async with agent_and_resources() as client:
        groups, unnamed = by_agent(verify_responses(), "agent")
        entries, errors = await collect_metrics(client, groups, {"agent": 2})
        missing, errs = await collect_metrics(client, {"nobody": verify_responses()}, {})
    assert unnamed == 0 and errors == []
    (entry,) = entries
    assert list(entry) == [
        "agent_ref",
        "agent_metrics",
        "key_metrics",
        "group_level_metrics",
        "num_scored",
        "num_failed",
    ]
    assert entry["agent_ref"] == {"name": "agent"}
    assert (entry["num_scored"], entry["num_failed"]) == (6, 2)
    assert entry["key_metrics"]["majority@3/accuracy"] == pytest.approx(100 * 2 / 3)
    assert missing == [] and len(errs) == 1 and "no server instance named 'nobody'" in errs[0]


class CountingAgent(SimpleResponsesAPIAgent):
    """An agent of its own (not simple_agent): the base answers from its hooks."""

    config: BaseResponsesAPIAgentConfig

    async def responses(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def compute_metrics(self, tasks: list[list[dict[str, Any]]]) -> dict[str, Any]:
        return {"tasks": len(tasks)}  # an async hook is awaited


async def test_an_agents_own_hooks_answer_by_default() -> None:
    agent = CountingAgent(
        config=BaseResponsesAPIAgentConfig(name="a"), server_client=ServerClient({})
    )
    async with asgi_client(agent) as http:
        resp = await http.post("/aggregate_metrics", json={"verify_responses": verify_responses()})
        bad = await http.post("/aggregate_metrics", json={"rows": []})
    assert resp.status_code == 200, resp.text
    metrics = resp.json()["agent_metrics"]
    assert metrics["tasks"] == 2 and metrics["mean/reward"] == 0.5
    assert bad.status_code == 422 and "verify_responses" in bad.text


def rows_of_a_run() -> list[dict[str, Any]]:
    """The scored rollouts as output rows (answers in the final text, reward_components), plus a
    failed rollout of task 1 and a failed task 2."""
    rows = []
    for t, task in enumerate(OUTCOMES):
        for r, (reward, answer) in enumerate(task):
            rows.append(
                {
                    "_ng_task_index": t,
                    "_ng_rollout_index": r,
                    "_ng_status": "completed",
                    "reward": reward,
                    "reward_components": {"correct": reward, "format": FORMAT[t]},
                    "response": model_response([assistant_message(f"The answer is {answer}")])
                    | {"usage": USAGE},
                    "responses_create_params": {"input": "q"},
                }
            )
    for t, r in ((1, 3), (2, 0), (2, 1)):
        rows.append({"_ng_task_index": t, "_ng_rollout_index": r, "_ng_status": "failed"})
    return rows


def test_the_summary_has_pass_and_majority_at_k_over_scored_rollouts_only() -> None:
    summary = summarise(rows_of_a_run())
    tasks, values = summary.pass_majority()
    assert tasks == 2  # task 2 never scored: not a task that failed every k
    assert values == pytest.approx(
        {
            "pass@1": 50.0,
            "pass@2": 100 * 5 / 6,
            "pass@3": 100.0,
            "majority@1": 50.0,
            "majority@2": 25.0,
            "majority@3": 100 * 2 / 3,
        }
    )
    assert list(values) == ["pass@1", "pass@2", "pass@3", "majority@1", "majority@2", "majority@3"]
    averages = summary.averages()
    assert averages["reward"] == 0.5
    assert averages["reward_components/format"] == 0.75
    assert averages["reward_components/correct"] == 0.5
    assert summary.statuses["failed"] == 3
    sent = summary.verify_responses[0]
    assert "responses_create_params" not in sent and sent["response"] == {"usage": USAGE}


def test_extracted_answer_wins_over_the_final_text() -> None:
    rows = rows_of_a_run()
    for row, answer in zip(rows[3:6], ("w", "w", "z"), strict=True):  # task 1's rollouts
        row["extracted_answer"] = answer
    _, values = summarise(rows).pass_majority()
    # task 1 now votes ("w", 0) twice: majority@3 = mean(1, 0) = 50, majority@2 = mean(.5, 0)
    assert values["majority@3"] == pytest.approx(50.0)
    assert values["majority@2"] == pytest.approx(25.0)


def test_the_report_text_and_path() -> None:
    report = MetricsReport(2, {"pass@1": 50.0}, [{"agent_ref": {"name": "a"}, "key_metrics": {}}])
    report.path = metrics_path(Path("/x/run.v2.jsonl"))
    assert str(report.path) == "/x/run.v2_aggregate_metrics.json"
    text = report.text()
    assert "pass@k and majority@k (%, over 2 tasks, scored rollouts only):" in text
    assert "Key metrics for a:" in text
    assert text.endswith("Aggregate metrics: /x/run.v2_aggregate_metrics.json")


async def test_a_failing_hook_is_reported_naming_the_agent_and_the_resources_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: MathLikeServer, tasks: Any) -> Any:
        raise ValueError("no answers to vote on")

    monkeypatch.setattr(MathLikeServer, "compute_metrics", broken)
    async with agent_and_resources() as client:
        entries, errors = await collect_metrics(client, {"agent": verify_responses()}, {})
    assert entries == []
    (error,) = errors
    assert error.startswith("agent 'agent' answered HTTP 502")
    assert "resources server 'math'" in error and "no answers to vote on" in error


def test_rows_go_to_the_agent_their_agent_ref_names_else_the_default() -> None:
    rows = verify_responses()
    for row in rows[:3]:
        row["agent_ref"] = {"type": "responses_api_agents", "name": "b"}
    groups, unnamed = by_agent(rows[::-1], "a")
    assert unnamed == 0
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in groups["b"]] == [
        (0, 0),
        (0, 1),
        (0, 2),
    ]  # sorted by (task, rollout)
    assert len(groups["a"]) == 3
    assert by_agent(rows, None)[1] == 3  # no agent_ref and no +agent_name: counted, not sent
