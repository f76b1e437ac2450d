"""The README's resources-server example runs as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import httpx

from nemo_gym.head.client import ServerClient
from tests.helpers import REPO, model_response


def _example(tmp_path: Path) -> dict[str, object]:
    readme = (REPO / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "AdderServer" in b]
    path = tmp_path / "adder_app.py"
    path.write_text(code)
    return runpy.run_path(str(path), run_name="adder_app")


async def test_readme_resources_server(tmp_path: Path) -> None:
    ns = _example(tmp_path)
    server = ns["AdderServer"](
        config=ns["BaseResourcesServerConfig"](name="adder"),  # type: ignore[operator]
        server_client=ServerClient({}),
    )
    transport = httpx.ASGITransport(app=server.setup_webserver())
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        assert (await client.post("/add", json={"a": 2, "b": 3})).json() == {"sum": 5}
        response = model_response(
            [
                {
                    "type": "message",
                    "id": "m1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "It is 5.", "annotations": []}],
                }
            ]
        )
        row = {"responses_create_params": {"input": "2+3?"}, "response": response}
        right = await client.post("/verify", json={**row, "expected": 5})
        wrong = await client.post("/verify", json={**row, "expected": 6})
    assert right.status_code == 200 and right.json()["reward"] == 1.0
    assert wrong.json()["reward"] == 0.0
