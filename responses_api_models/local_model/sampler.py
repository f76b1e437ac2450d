"""Token choice for the local model: temperature, top_p, the tool grammar's mask, exact log-probs.

The engine (``engine.py``) decodes one token at a time and hands this module the logits of the
last position; this module says which token comes next and what a trainer must know about it:

* its **log-probability** under the model's distribution with the temperature applied
  (``log_softmax(logits / T)`` over the whole vocabulary, as vLLM's ``processed_logprobs`` and
  NeMo RL's temperature scaling compute it). top_p and the grammar's mask shape what is *sampled*
  but are not folded into the recorded number, so a trainer that recomputes the log-prob of the
  same token teacher-forced gets the same value. At temperature 0 (greedy) the log-prob is that
  of the untempered distribution;
* whether the **grammar forced** it: the grammar left the model no choice of text. Either one
  token was allowed, or every allowed token spells a prefix of the same string (a BPE vocabulary
  can spell a forced ``<tool_call>`` in several ways; choosing among them is not a choice of what
  to say). A policy-gradient step must not credit such tokens to the model.

The grammar is llama.cpp's own GBNF sampler, used through llama-cpp-python's public C bindings
only to tell which tokens are allowed next; sampling itself is done here, with numpy, from a
seeded generator, so the distribution sampled from is known exactly.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


MAX_FORCED_SPELLINGS = 64  # a forced string has at most as many prefix tokens as characters


class GrammarDeadEnd(RuntimeError):
    """The grammar allows no token at all (a grammar that cannot be completed)."""


@dataclass(frozen=True)
class Choice:
    """One sampled token and what a trainer needs to know about it."""

    token: int
    log_prob: float
    forced: bool


def log_softmax(x: FloatArray) -> FloatArray:
    peak = float(np.max(x))
    shifted = x - peak
    return shifted - float(np.log(np.sum(np.exp(shifted))))


class GrammarMask:
    """Which tokens a GBNF grammar allows next, tracked as tokens are accepted.

    Holds a llama.cpp grammar sampler and one reusable candidate array the size of the
    vocabulary; :meth:`close` frees the sampler. ``pieces`` are the bytes each token id spells.
    """

    def __init__(self, llama: Any, grammar: str, pieces: list[bytes]) -> None:
        self._pieces = pieces
        import llama_cpp

        self._lib = llama_cpp
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        if not self._sampler:
            raise ValueError("llama.cpp rejected the tool-call grammar")
        self._n = int(llama.n_vocab())
        self._data = (llama_cpp.llama_token_data * self._n)()
        self._view: Any = np.ctypeslib.as_array(self._data)
        self._ids = np.arange(self._n, dtype=np.int32)

    def allowed(self, logits: FloatArray) -> BoolArray:
        """A boolean per token id: may it come next?"""
        self._view["id"] = self._ids
        self._view["logit"] = logits.astype(np.float32)
        self._view["p"] = 0.0
        candidates = self._lib.llama_token_data_array(
            data=ctypes.cast(self._data, ctypes.POINTER(self._lib.llama_token_data)),
            size=self._n,
            selected=-1,
            sorted=False,
        )
        self._lib.llama_sampler_apply(self._sampler, ctypes.byref(candidates))
        # The grammar sets the logit of every rejected candidate to -inf, in place.
        size = int(candidates.size)
        allowed = np.zeros(self._n, dtype=np.bool_)
        view = self._view[:size]
        allowed[view["id"][np.isfinite(view["logit"])]] = True
        return allowed

    def forces(self, allowed: BoolArray) -> bool:
        """Whether the allowed tokens leave no choice of text (see the module docstring)."""
        ids = np.flatnonzero(allowed)
        if len(ids) == 1:
            return True
        if len(ids) > MAX_FORCED_SPELLINGS:
            return False
        spelled = sorted((self._pieces[i] for i in ids), key=len)
        longest = spelled[-1]
        return all(piece and longest.startswith(piece) for piece in spelled)

    def accept(self, token: int) -> None:
        """Advance the grammar past ``token``."""
        self._lib.llama_sampler_accept(self._sampler, token)

    def close(self) -> None:
        if self._sampler:
            self._lib.llama_sampler_free(self._sampler)
            self._sampler = None


def choose(
    logits: FloatArray,
    *,
    temperature: float,
    top_p: float,
    allowed: BoolArray | None,
    forced: bool,
    rng: np.random.Generator,
) -> Choice:
    """Sample the next token from ``logits`` (see the module docstring for what is recorded)."""
    greedy = temperature <= 0
    log_probs = log_softmax(logits if greedy else logits / temperature)
    candidates = log_probs
    if allowed is not None:
        if not allowed.any():
            raise GrammarDeadEnd("the tool-call grammar allows no next token")
        candidates = np.where(allowed, log_probs, -np.inf)
    if greedy:
        token = int(np.argmax(candidates))
    else:
        token = _sample(candidates, top_p, rng)
    return Choice(token=token, log_prob=float(log_probs[token]), forced=forced)


def _sample(log_probs: FloatArray, top_p: float, rng: np.random.Generator) -> int:
    """Draw from ``exp(log_probs)`` renormalised, truncated to the top_p nucleus."""
    probs = np.exp(log_probs - np.max(log_probs))
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = int(np.searchsorted(cumulative, top_p * cumulative[-1])) + 1
        truncated = np.zeros_like(probs)
        truncated[order[:keep]] = probs[order[:keep]]
        probs = truncated
    cdf = np.cumsum(probs)
    draw = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, draw, side="right"), len(cdf) - 1))
