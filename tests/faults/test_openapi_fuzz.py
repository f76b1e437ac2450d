"""Schemathesis against every server's OpenAPI: generated requests never get a 5xx.

One ``ng_run`` serves every shipped environment (each resources server and its agent), the
policy model as ``openai_model`` over the fake OpenAI endpoint, the embedded ``local_model``
(one small instance: a 256-token context bounds each generation) and the head server. For each
server, every operation of its ``/openapi.json`` gets schema-valid requests (positive) and
schema-violating ones (negative); any answer of 500 or above is a failure. The hot proxy routes
(an agent's ``/run`` and ``/v1/responses``, a model's ``/v1/responses``) are plain routes
that validate their body themselves and are absent from the published document, so their
request models are added to it here before generating.

Examples are few (``derandomize``: the same inputs on every run) to keep the whole run short on
two cores; the local model gets fewer, since each of its answers is generated for real.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import BaseModel
from schemathesis import GenerationMode

from nemo_gym.agent.server import BaseRunRowRequest
from nemo_gym.openai_utils import NeMoGymResponseCreateParamsNonStreaming
from nemo_gym.protocol.chat import NeMoGymChatCompletionCreateParamsNonStreaming
from tests.helpers import REPO, fake_openai_process, free_port, ng_run

pytestmark = pytest.mark.e2e
ENVIRONMENTS = sorted(p.parent.parent.name for p in REPO.glob("resources_servers/*/configs/*.yaml"))
LOCAL_MODEL = """\
local_policy:
  responses_api_models:
    local_model:
      entrypoint: app.py
      n_instances: 1
      n_threads: 1
      n_ctx: 256
      default_max_output_tokens: 8
"""
EXAMPLES = 3  # per operation and generation mode
LOCAL_EXAMPLES = 1


def add_body(spec: dict[str, Any], path: str, model: type[BaseModel]) -> None:
    """Describe ``POST path`` with ``model`` as its JSON body in ``spec``."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[model.__name__] = schema
    spec["paths"].setdefault(path, {})["post"] = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        },
        "responses": {"200": {"description": "OK"}},
    }


def openapi(url: str, kind: str) -> dict[str, Any]:
    """The server's OpenAPI document with the plain routes' bodies added."""
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=30) as resp:
        spec: dict[str, Any] = json.loads(resp.read())
    if kind == "responses_api_agents":
        add_body(spec, "/run", BaseRunRowRequest)
        add_body(spec, "/v1/responses", NeMoGymResponseCreateParamsNonStreaming)
    elif kind == "responses_api_models":
        add_body(spec, "/v1/responses", NeMoGymResponseCreateParamsNonStreaming)
        if "/v1/chat/completions" not in spec["paths"]:
            add_body(spec, "/v1/chat/completions", NeMoGymChatCompletionCreateParamsNonStreaming)
    return spec


def fuzz(url: str, spec: dict[str, Any], examples: int, errors: list[str]) -> list[str]:
    """Run every operation of ``spec`` against ``url``; append 5xx answers to ``errors``;
    return the operations run."""
    labels = []
    for result in schemathesis.openapi.from_dict(spec).get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                examples_of(operation, mode, url, examples, errors)()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
    return labels


def examples_of(
    operation: Any, mode: GenerationMode, url: str, examples: int, errors: list[str]
) -> Any:
    """A Hypothesis test that sends ``examples`` generated requests for ``operation``."""
    label = f"{url} {operation.label} ({mode.value})"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, timeout=120)
        if response.status_code >= 500:
            errors.append(
                f"{label}: HTTP {response.status_code} {response.text[:300]} "
                f"for body {str(case.body)[:300]}"
            )

    return call


def test_no_server_answers_a_generated_request_with_a_5xx(tmp_path: Path) -> None:
    local = tmp_path / "local_model.yaml"
    local.write_text(LOCAL_MODEL)
    configs = ",".join(
        [
            *(str(p.relative_to(REPO)) for p in REPO.glob("resources_servers/*/configs/*.yaml")),
            "responses_api_models/openai_model/configs/openai_model.yaml",
            str(local),
        ]
    )
    with fake_openai_process() as base_url:
        port = free_port()
        run = ng_run(port, base_url, configs=configs)
        try:
            run.wait_line("servers healthy in", timeout=180)
            head = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(f"{head}/server_instances", timeout=10) as resp:
                servers = [(r["name"], r["url"], r["server_type"]) for r in json.loads(resp.read())]
            errors: list[str] = []
            run_ops: dict[str, list[str]] = {
                "head_server": fuzz(head, openapi(head, "head"), EXAMPLES, errors)
            }
            for name, url, kind in servers:
                examples = LOCAL_EXAMPLES if name == "local_policy" else EXAMPLES
                run_ops[name] = fuzz(url, openapi(url, kind), examples, errors)
        finally:
            run.stop()
    assert errors == [], "\n".join(errors)
    # Every server was reached, with the routes that matter most.
    kinds = {name: kind for name, _, kind in servers}
    resources = [n for n, k in kinds.items() if k == "resources_servers"]
    agents = [n for n, k in kinds.items() if k == "responses_api_agents"]
    assert len(resources) == len(agents) == len(ENVIRONMENTS)
    for name in resources:
        assert {"POST /verify", "POST /seed_session"} <= set(run_ops[name]), name
    for name in agents:
        assert {"POST /run", "POST /v1/responses"} <= set(run_ops[name]), name
    for name in ("policy_model", "local_policy"):
        assert {"POST /v1/responses", "POST /v1/chat/completions"} <= set(run_ops[name])
    assert "GET /server_instances" in run_ops["head_server"]
