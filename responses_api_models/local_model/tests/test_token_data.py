"""local_model's training data checked against an independent teacher-forced computation.

The reference is a second llama.cpp instance of the same weights built with ``logits_all``. It
is fed the prompt and then the recorded tokens one at a time (teacher forcing: it samples
nothing), keeps every position's logits in its own score buffer, and the log-probability of
each recorded token is computed here from those rows with the temperature applied. The server
computes its numbers from the C API's last-position logits while sampling, through its own
prefix cache and sampler; the two paths share no code of ours.

Decoding one token at a time matters: on this Q4_1 model llama.cpp's kernels give logits that
differ by about 0.02 nats per token between a batched pass and one-token steps over the same
long context (bench/RESULTS.md), which is arithmetic noise, not what these tests look for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from nemo_gym.authoring import ServerClient
from responses_api_models.local_model.app import LocalModelConfig, LocalModelServer
from responses_api_models.local_model.engine import default_model_path
from responses_api_models.local_model.prompting import looks_like_tool_call, parse_tool_calls
from tests.helpers import WEATHER_TOOL

N_CTX = 2048


@pytest.fixture(scope="module")
def served() -> tuple[LocalModelServer, FastAPI]:
    srv = LocalModelServer(
        config=LocalModelConfig(name="policy_model", n_instances=1, n_ctx=N_CTX),
        server_client=ServerClient({}),
    )
    asyncio.run(srv.on_startup())  # what the app's lifespan does before serving
    return srv, srv.setup_webserver()


@pytest.fixture(scope="module")
def reference() -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(default_model_path()),
        n_ctx=N_CTX,
        n_batch=512,
        logits_all=True,
        type_k=0,  # float32 KV cache, as the server uses
        type_v=0,
        verbose=False,
    )


@pytest.fixture
async def client(served: tuple[LocalModelServer, FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served[1])
    async with httpx.AsyncClient(transport=transport, base_url="http://m", timeout=300) as c:
        yield c


async def train_turn(client: httpx.AsyncClient, **params: Any) -> tuple[dict[str, Any], Any]:
    resp = await client.post("/v1/responses", json={**params, "return_token_id_information": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return body, body["output"][-1]


def teacher_forced(reference: Any, chunks: list[list[int]], sampled: list[int], temp: float) -> Any:
    """log p(sampled[i] | context + sampled[:i]) at temperature ``temp``, teacher-forced.

    The context is decoded as ``chunks`` (one batch each, in order, as the server decoded it:
    a prompt, then a turn's generated tokens one by one, then the next turn's text), then the
    sampled tokens one at a time.
    """
    reference.reset()
    for chunk in chunks:
        reference.eval(chunk)
    start = reference.n_tokens - 1
    for token in sampled[:-1]:
        reference.eval([token])
    rows = np.asarray(reference.scores[start : start + len(sampled)])
    scaled = rows.astype(np.float64) / temp
    peak = scaled.max(axis=1, keepdims=True)
    log_norm = peak[:, 0] + np.log(np.exp(scaled - peak).sum(axis=1))
    return scaled[np.arange(len(sampled)), sampled] - log_norm


LONG_TEXT = " ".join(
    f"Note {i}: the harbour master logged a ship named Vessel{i} arriving at dawn with cargo."
    for i in range(45)
)


@pytest.mark.parametrize(
    ("question", "temperature", "min_prompt"),
    [
        ("Say hello to the crew.", 0.7, 1),
        ("Say hello to the crew.", 1.3, 1),
        (LONG_TEXT + "\nSummarise these notes.", 0.8, 601),
    ],
    ids=["short-t0.7", "short-t1.3", "long-prompt"],
)
async def test_log_probs_match_a_teacher_forced_pass(
    client: httpx.AsyncClient, reference: Any, question: str, temperature: float, min_prompt: int
) -> None:
    body, last = await train_turn(
        client, input=question, temperature=temperature, seed=11, max_output_tokens=24
    )
    prompt, sampled = last["prompt_token_ids"], last["generation_token_ids"]
    assert len(prompt) >= min_prompt and len(sampled) >= 5
    expected = teacher_forced(reference, [prompt], sampled, temperature)
    recorded = np.asarray(last["generation_log_probs"])
    difference = np.abs(recorded - expected)
    assert float(difference.max()) < 1e-4, (recorded, expected)  # same arithmetic: equal
    # Not a constant: a uniform read (-ln(vocab)) or a stale row would differ per token.
    assert len(set(np.round(recorded, 3))) > 1


async def test_multi_turn_training_data_beyond_one_batch(
    client: httpx.AsyncClient, reference: Any
) -> None:
    """Turn 2 starts past 512 tokens (the old crash) and still matches the reference."""
    history: list[dict[str, Any]] = [{"role": "user", "content": LONG_TEXT + "\nWhich ship?"}]
    body, last = await train_turn(
        client, input=history, temperature=0.9, seed=3, max_output_tokens=12
    )
    history += [*body["output"], {"role": "user", "content": "And the one after it?"}]
    body, second = await train_turn(
        client, input=history, temperature=0.9, seed=4, max_output_tokens=12
    )
    exact = last["prompt_token_ids"] + last["generation_token_ids"]
    assert second["prompt_token_ids"][: len(exact)] == exact
    first_prompt, first_sampled = last["prompt_token_ids"], last["generation_token_ids"]
    tail = second["prompt_token_ids"][len(exact) :]
    chunks = [first_prompt, *([t] for t in first_sampled), tail]
    expected = teacher_forced(reference, chunks, second["generation_token_ids"], 0.9)
    assert float(np.abs(np.asarray(second["generation_log_probs"]) - expected).max()) < 1e-4


async def test_turn_records_sampling_params_policy_and_seed_reproduces(
    client: httpx.AsyncClient,
) -> None:
    body, last = await train_turn(client, input="Name a colour.", max_output_tokens=10)
    params = last["sampling_params"]
    assert params["temperature"] == 0.7 == body["temperature"]  # the config's default, not null
    assert params["top_p"] == 1.0 and params["max_tokens"] == 10
    assert isinstance(params["seed"], int)
    digest = hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    assert last["policy"] == {"name": "SmolLM2-135M-Instruct", "version": f"sha256:{digest[:16]}"}
    _, again = await train_turn(
        client, input="Name a colour.", max_output_tokens=10, seed=params["seed"]
    )
    assert again["generation_token_ids"] == last["generation_token_ids"]
    assert again["generation_log_probs"] == pytest.approx(last["generation_log_probs"], abs=1e-4)


async def test_grammar_forced_tokens_are_masked(
    served: tuple[LocalModelServer, FastAPI], client: httpx.AsyncClient
) -> None:
    body, last = await train_turn(
        client,
        input="weather in Paris?",
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0.8,
        seed=2,
        max_output_tokens=60,
    )
    call = next(i for i in body["output"] if i["type"] == "function_call")
    forced, sampled = last["generation_grammar_forced"], last["generation_token_ids"]
    assert len(forced) == len(sampled) and set(forced) <= {0, 1}
    llama = served[0].pool.first
    text_of = [llama.detokenize([t]).decode(errors="replace") for t in sampled]
    # The call's markup and the tool's name are the grammar's, not the model's choice...
    forced_text = "".join(t for t, f in zip(text_of, forced, strict=True) if f)
    assert "<tool_call>" in forced_text and "get_weather" in forced_text
    # ...while the city the model chose was sampled freely.
    city = json.loads(call["arguments"])["city"]
    free_text = "".join(t for t, f in zip(text_of, forced, strict=True) if not f)
    assert city and city[:3] in free_text
    assert last["text_tool_call"] is False

    _, plain = await train_turn(
        client, input="Say hi.", temperature=0.8, seed=2, max_output_tokens=8
    )
    assert set(plain["generation_grammar_forced"]) == {0}


def test_a_tool_call_written_as_text_is_recognised() -> None:
    assert looks_like_tool_call('<tool_call>{"name": "get_weather"}</tool_call>')
    assert looks_like_tool_call('Sure: {"name": "get_weather", "arguments": {"city": "Rome"}}')
    assert not looks_like_tool_call("The weather in Rome is sunny.")
    assert not looks_like_tool_call('{"name": "Rome"}')


def test_a_call_whose_value_contains_the_closing_tag_parses_whole() -> None:
    text = (
        'Booking. <tool_call>{"name": "book_table", "arguments": {"restaurant": "a</tool_call>b"}}'
        "</tool_call>\n"
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'
    )
    plain, calls = parse_tool_calls(text)
    assert plain == "Booking."
    assert [(n, json.loads(a)) for n, a in calls] == [
        ("book_table", {"restaurant": "a</tool_call>b"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert parse_tool_calls('<tool_call>{"name": "x", "arguments": {') == (
        '<tool_call>{"name": "x", "arguments": {',
        [],
    )
