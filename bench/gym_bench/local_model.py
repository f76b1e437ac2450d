"""The local model server under measurement: ng_run with local_model at a given instances x
threads setting, one chat request timed from the client, llama-cpp-python called directly in
this process, the interleaved direct-vs-server comparison, and concurrent request levels."""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .common import ROOT, percentile, tool
from .processes import NgRun
from .quiet import CpuWindow
from .sampling import Sampler

LOCAL_MODEL_CONFIG = "responses_api_models/local_model/configs/local_model.yaml"
SETTING = "++policy_model.responses_api_models.local_model"
PROMPT = "Write a long story about a lighthouse keeper."
MESSAGES = [{"role": "user", "content": PROMPT}]


def model_path() -> Path:
    """The GGUF the local model server loads by default (found by the server's own code)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from responses_api_models.local_model.engine import default_model_path

    return default_model_path()


class LocalNgRun(NgRun):
    """ng_run with the given config paths and overrides (no fake endpoint)."""

    def __init__(self, out: Path, head_port: int, args: list[str]) -> None:
        super().__init__(out, 0, head_port)
        self.args = args
        out.mkdir(parents=True, exist_ok=True)
        (out / "ng_run.log").unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            tool("ng_run"),
            *self.args,
            "+echo_logs=false",
            f"+head_server.port={self.head_port}",
        ]

    def start_healthy(self) -> dict[str, Any]:
        return self.start(Sampler())

    def url_of(self, name: str) -> str:
        for row in self.instances:
            if row.get("name") == name:
                return str(row["url"]).rstrip("/")
        raise RuntimeError(f"no {name} in /server_instances: {self.instances}")


def model_server(out: Path, head_port: int, n_instances: int, n_threads: int) -> LocalNgRun:
    """ng_run serving only the local model, as ``policy_model``, with the given setting."""
    args = [
        f"+config_paths=[{LOCAL_MODEL_CONFIG}]",
        f"{SETTING}.n_instances={n_instances}",
        f"{SETTING}.n_threads={n_threads}",
    ]
    return LocalNgRun(out, head_port, args)


def post_chat(url: str, body: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
    """POST one chat completion; its tokens, seconds (client side) and tokens/s."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        f"{url}/v1/chat/completions", data=data, headers={"Content-Type": "application/json"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # loopback only
        answer = json.loads(resp.read())
    return _timed(answer, time.perf_counter() - t0)


def _timed(answer: dict[str, Any], seconds: float) -> dict[str, Any]:
    usage = answer["usage"]
    choice = answer["choices"][0]
    tokens = int(usage["completion_tokens"])
    return {
        "completion_tokens": tokens,
        "prompt_tokens": int(usage["prompt_tokens"]),
        "finish_reason": choice.get("finish_reason"),
        "seconds": round(seconds, 4),
        "tokens_per_s": round(tokens / seconds, 2),
        "text": choice["message"].get("content") or "",
    }


class DirectLlama:
    """llama-cpp-python called directly, in this process, as a user of the library would."""

    def __init__(self, n_threads: int, n_ctx: int = 4096) -> None:
        import llama_cpp

        self.llama: Any = llama_cpp.Llama(
            model_path=str(model_path()), n_ctx=n_ctx, n_threads=n_threads, verbose=False
        )

    def chat(self, max_tokens: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        answer = self.llama.create_chat_completion(
            messages=MESSAGES, max_tokens=max_tokens, temperature=0
        )
        return _timed(answer, time.perf_counter() - t0)

    def close(self) -> None:
        self.llama.close()
        self.llama = None
        gc.collect()


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tokens_per_s_median": _median(runs, "tokens_per_s"),
        "tokens_per_s_min": min(r["tokens_per_s"] for r in runs),
        "tokens_per_s_max": max(r["tokens_per_s"] for r in runs),
        "seconds_median": round(statistics.median(r["seconds"] for r in runs), 3),
        "completion_tokens": sorted({r["completion_tokens"] for r in runs}),
        "prompt_tokens": sorted({r["prompt_tokens"] for r in runs}),
        "finish_reasons": sorted({str(r["finish_reason"]) for r in runs}),
    }


def overhead(url: str, direct: DirectLlama, requests: int, max_tokens: int) -> dict[str, Any]:
    """Direct and server requests, one at a time, interleaved ABAB after one warm-up each."""
    body = {"messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0}
    warm = {"direct": direct.chat(max_tokens), "server": post_chat(url, body)}
    window = CpuWindow()
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "server": []}
    for _ in range(requests):
        runs["direct"].append(direct.chat(max_tokens))
        runs["server"].append(post_chat(url, body))
    noise = window.close()
    d, s = _summary(runs["direct"]), _summary(runs["server"])
    texts = {r["text"] for side in runs.values() for r in side}
    return {
        "requests_per_side": requests,
        "max_tokens": max_tokens,
        "prompt": PROMPT,
        "direct": d,
        "server": s,
        "overhead_pct": round(
            (d["tokens_per_s_median"] - s["tokens_per_s_median"]) / d["tokens_per_s_median"] * 100,
            2,
        ),
        "same_text_on_both_sides": len(texts) == 1,
        "sample_text": next(iter(texts))[:200],
        "warmup_tokens_per_s": {k: v["tokens_per_s"] for k, v in warm.items()},
        "per_request_tokens_per_s": {k: [r["tokens_per_s"] for r in v] for k, v in runs.items()},
        "cpu": noise,
    }


def concurrency_level(
    url: str, parallel: int, requests: int, max_tokens: int, seed0: int
) -> dict[str, Any]:
    """``requests`` chat requests (temperature 0.7, seeds seed0..), ``parallel`` at a time."""

    def one(i: int) -> dict[str, Any]:
        body = {
            "messages": MESSAGES,
            "max_tokens": max_tokens,
            "temperature": 0.7,
            "seed": seed0 + i,
        }
        return post_chat(url, body)

    window = CpuWindow()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        runs = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - t0
    noise = window.close()
    tokens = sum(r["completion_tokens"] for r in runs)
    latencies = [r["seconds"] for r in runs]
    return {
        "parallel": parallel,
        "requests": requests,
        "completion_tokens": tokens,
        "wall_s": round(wall, 3),
        "aggregate_tokens_per_s": round(tokens / wall, 2),
        "latency_p50_s": round(percentile(latencies, 50) or 0.0, 3),
        "latency_max_s": round(max(latencies), 3),
        "per_request_tokens_per_s_median": _median(runs, "tokens_per_s"),
        "cpu": noise,
    }
