"""The bugs the generated requests of ``test_openapi_fuzz`` found, each pinned by a fast test.

* Every resources server answered 500 to ``/verify`` when the response's ``text.format`` was a
  JSON schema: verifiers rebuild their answer from ``**body.model_dump()``, and OpenAI's
  ``ResponseFormatTextJSONSchemaConfig`` dumps ``schema`` as ``schema_`` by name but validates
  only by alias. ``BaseRunRequest.model_dump`` now dumps by alias.
* Routes returning a pydantic model answered its fields by name (``schema_``), unlike FastAPI
  (by alias): ``server.routing`` now serialises by alias.
* (``local_model``, pinned by the fuzz test itself, which loads the model: a negative ``seed``
  and a chat message without ``role`` answered 500; now the seed is taken modulo 2**64 and the
  message is refused with 422 naming ``messages.<i>.role``.)
"""

from __future__ import annotations

from nemo_gym.head.client import ServerClient
from resources_servers.example_single_tool_call.app import (
    ExampleSingleToolCallConfig,
    ExampleSingleToolCallServer,
)
from tests.helpers import asgi_client, model_response

JSON_FORMAT = {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}}


async def test_verify_answers_a_response_whose_text_format_is_a_json_schema() -> None:
    server = ExampleSingleToolCallServer(
        config=ExampleSingleToolCallConfig(name="weather"), server_client=ServerClient({})
    )
    body = {
        "responses_create_params": {"input": "Paris?", "text": JSON_FORMAT},
        "response": {**model_response(), "text": JSON_FORMAT},
    }
    async with asgi_client(server) as client:
        resp = await client.post("/verify", json=body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["reward"] == 1.0
    for echoed in (answer["response"]["text"], answer["responses_create_params"]["text"]):
        assert echoed["format"]["schema"] == {"type": "object"}  # as sent: not "schema_"
        assert "schema_" not in echoed["format"]
