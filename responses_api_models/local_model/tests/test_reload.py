"""New weights while serving: ``POST /load_weights`` against two real GGUF files.

The second file is the shipped SmolLM2 GGUF with its final norm scaled by 1.5, written with the
``gguf`` package (a training extra); a scaled norm scales every logit, so the same seeded request
gives other log-probs on it. A request held inside sampling (a gate in the worker thread, no
sleeps) while the weights change must finish exactly as it would have on the old file.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from nemo_gym.authoring import ServerClient
from responses_api_models.local_model import app as app_module
from responses_api_models.local_model.app import LocalModelConfig, LocalModelServer
from responses_api_models.local_model.engine import default_model_path, file_version

gguf = pytest.importorskip("gguf", reason="the gguf package (the [train] extra) writes the copy")

REQUEST = {
    "input": "Name three colours.",
    "max_output_tokens": 10,
    "temperature": 1.0,
    "seed": 7,
    "return_token_id_information": True,
}


def scaled_copy(source: Path, target: Path, factor: float) -> Path:
    """``source`` with ``output_norm.weight`` multiplied by ``factor``, edited in place."""
    shutil.copyfile(source, target)
    reader = gguf.GGUFReader(target, "r+")
    (tensor,) = [t for t in reader.tensors if t.name == "output_norm.weight"]
    tensor.data[...] = tensor.data * factor
    reader.data.flush()
    del reader
    return target


@pytest.fixture
def served() -> tuple[LocalModelServer, FastAPI]:
    srv = LocalModelServer(
        config=LocalModelConfig(name="policy_model", n_instances=1, n_ctx=512),
        server_client=ServerClient({}),
    )
    asyncio.run(srv.on_startup())  # what the app's lifespan does before serving
    return srv, srv.setup_webserver()


@pytest.fixture
async def client(served: tuple[LocalModelServer, FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served[1])
    async with httpx.AsyncClient(transport=transport, base_url="http://m", timeout=300) as c:
        yield c


def last_turn(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    item: dict[str, Any] = resp.json()["output"][-1]
    return item


async def test_in_flight_request_finishes_on_old_weights(
    served: tuple[LocalModelServer, FastAPI],
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = served[0]
    original = default_model_path()
    new_file = scaled_copy(original, tmp_path / "scaled.gguf", 1.5)
    old_version, new_version = file_version(original), file_version(new_file)
    assert old_version != new_version

    before = last_turn(await client.post("/v1/responses", json=REQUEST))
    assert before["policy"]["version"] == old_version

    started, release = threading.Event(), threading.Event()
    real_generate = app_module.generate
    calls = 0

    def gated(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # hold the first request inside its worker thread
            started.set()
            assert release.wait(120), "the test never released the held request"
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(app_module, "generate", gated)
    held = asyncio.create_task(client.post("/v1/responses", json=REQUEST))
    assert await asyncio.to_thread(started.wait, 120)
    old_pool = server.pool

    loaded = await client.post("/load_weights", json={"model_path": str(new_file)})
    assert loaded.status_code == 200, loaded.text
    body = loaded.json()
    assert body["policy"] == {"name": "SmolLM2-135M-Instruct", "version": new_version}
    assert body["previous_version"] == old_version
    assert server.pool.model_path == new_file
    assert not old_pool.closed  # the held request still uses it

    after = last_turn(await client.post("/v1/responses", json=REQUEST))
    assert after["policy"]["version"] == new_version
    assert after["generation_log_probs"] != before["generation_log_probs"]

    release.set()
    finished = last_turn(await held)
    assert finished["policy"]["version"] == old_version
    assert finished["generation_token_ids"] == before["generation_token_ids"]
    assert finished["generation_log_probs"] == before["generation_log_probs"]
    assert old_pool.closed  # freed when its last request ended


async def test_bad_requests_are_refused_and_keep_serving(
    served: tuple[LocalModelServer, FastAPI], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    server = served[0]
    version = server.pool.version
    missing = await client.post("/load_weights", json={"model_path": str(tmp_path / "no.gguf")})
    assert missing.status_code == 422
    assert "no.gguf: no such GGUF file" in missing.text
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file")
    junk = await client.post("/load_weights", json={"model_path": str(tmp_path / "junk.gguf")})
    assert junk.status_code == 422
    assert "junk.gguf: llama.cpp cannot load it" in junk.text
    typo = await client.post("/load_weights", json={"model_pth": "x.gguf"})
    assert typo.status_code == 422
    assert "model_pth" in typo.text
    assert server.pool.version == version and not server.pool.closed
    assert last_turn(await client.post("/v1/responses", json=REQUEST))["policy"]["version"] == (
        version
    )


async def test_only_loopback_callers_may_load_weights(
    served: tuple[LocalModelServer, FastAPI],
) -> None:
    transport = httpx.ASGITransport(app=served[1], client=("10.1.2.3", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as remote:
        resp = await remote.post("/load_weights", json={"model_path": str(default_model_path())})
    assert resp.status_code == 403
    assert "loopback callers only, not 10.1.2.3" in resp.text
