"""How close local_model's recorded log-probs are to a teacher-forced recomputation of them.

Not a test: it prints figures for bench/RESULTS.md. The local model server (in-process, as the
tests run it) samples answers in training mode to short and long (> 600 token) prompts; each
answer's recorded ``generation_log_probs`` are compared with the log-probs of the same tokens
recomputed by a second llama.cpp instance (``logits_all``, temperature applied) in two ways:

* teacher-forced one token at a time, as they were generated (what the tests check, < 0.01);
* in one batched pass over prompt + answer, which is how a trainer scores a sequence. On this
  Q4_1 model llama.cpp's batched and one-token kernels disagree by a few hundredths of a nat on
  long contexts; this run says by how much.

    .venv/bin/python bench/logprob_bench.py [--samples 6]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = "Tell me something about ships."
LONG = (
    " ".join(
        f"Note {i}: the harbour master logged a ship named Vessel{i} arriving at dawn with cargo."
        for i in range(45)
    )
    + "\nSummarise these notes."
)


def _log_probs(rows: Any, tokens: list[int], temperature: float) -> Any:
    scaled = np.asarray(rows, dtype=np.float64) / temperature
    peak = scaled.max(axis=1, keepdims=True)
    norm = peak[:, 0] + np.log(np.exp(scaled - peak).sum(axis=1))
    return scaled[np.arange(len(tokens)), tokens] - norm


def reference_log_probs(ref: Any, prompt: list[int], sampled: list[int], temp: float) -> Any:
    """(one token at a time, one batched pass) log-probs of ``sampled`` after ``prompt``."""
    ref.reset()
    ref.eval(prompt)
    for token in sampled[:-1]:
        ref.eval([token])
    stepwise = _log_probs(
        ref.scores[len(prompt) - 1 : len(prompt) - 1 + len(sampled)], sampled, temp
    )
    ref.reset()
    ref.eval(prompt + sampled[:-1])
    batched = _log_probs(
        ref.scores[len(prompt) - 1 : len(prompt) - 1 + len(sampled)], sampled, temp
    )
    return stepwise, batched


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6, help="answers per prompt length")
    args = parser.parse_args()

    import httpx
    from llama_cpp import Llama

    from nemo_gym.head.client import ServerClient
    from responses_api_models.local_model.app import LocalModelConfig, LocalModelServer
    from responses_api_models.local_model.engine import GGML_TYPE_F32, default_model_path

    server = LocalModelServer(
        config=LocalModelConfig(name="policy_model", n_instances=1, n_ctx=2048),
        server_client=ServerClient({}),
    )
    app = server.setup_webserver()
    await server.on_startup()  # loads the model (what the app's lifespan does under uvicorn)
    ref = Llama(
        model_path=str(default_model_path()),
        n_ctx=2048,
        logits_all=True,
        type_k=GGML_TYPE_F32,
        type_v=GGML_TYPE_F32,
        verbose=False,
    )
    print(
        "| prompt | tokens compared | stepwise mean / max abs diff | batched mean / max abs diff |"
    )
    print("| --- | --- | --- | --- |")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", timeout=600) as client:
        for label, question in (("short", SHORT), ("long", LONG)):
            step_diffs: list[float] = []
            batch_diffs: list[float] = []
            prompt_len = 0
            for seed in range(args.samples):
                resp = await client.post(
                    "/v1/responses",
                    json={
                        "input": question,
                        "temperature": 0.8,
                        "seed": seed,
                        "max_output_tokens": 48,
                        "return_token_id_information": True,
                    },
                )
                last = resp.json()["output"][-1]
                prompt, sampled = last["prompt_token_ids"], last["generation_token_ids"]
                prompt_len = len(prompt)
                stepwise, batched = reference_log_probs(ref, prompt, sampled, 0.8)
                recorded = np.asarray(last["generation_log_probs"])
                step_diffs += list(np.abs(recorded - stepwise))
                batch_diffs += list(np.abs(recorded - batched))
            print(
                f"| {label} ({prompt_len} tokens) | {len(step_diffs)} | "
                f"{statistics.fmean(step_diffs):.5f} / {max(step_diffs):.5f} | "
                f"{statistics.fmean(batch_diffs):.4f} / {max(batch_diffs):.4f} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
