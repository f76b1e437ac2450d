"""reasoning_gym: procedurally generated reasoning tasks, scored by their own generators.

Tasks come from the ``reasoning-gym`` package (arithmetic, logic, puzzles, string tasks, ...).
A row carries the key of its entry (``reasoning_gym: {dataset, size, seed, config, index}``);
``/verify`` regenerates that entry (``generators.py``: deterministic, datasets cached), takes the
last ``<answer>...</answer>`` of the model's final text, and the reward is the generator's own
``score_answer``. ``generate.py`` writes rows from the generators listed in this server's config,
which are validated when the server starts.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import Field

from nemo_gym.authoring import final_answer_text
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from resources_servers.reasoning_gym.generators import EntryRef, GeneratorSpec, registry

_THINK_SPAN = re.compile(r"<think>.*?</think>", re.DOTALL)


class ReasoningGymConfig(BaseResourcesServerConfig):
    generators: list[GeneratorSpec] = Field(default_factory=list)
    """What ``generate.py`` writes; each is checked (and its dataset built) at startup."""
    require_question_in_prompt: bool = True
    """Reject a row whose prompt does not contain its regenerated question (a stale row)."""


class ReasoningGymVerifyRequest(BaseVerifyRequest):
    reasoning_gym: EntryRef


class ReasoningGymVerifyResponse(ReasoningGymVerifyRequest, BaseVerifyResponse):
    extracted_answer: str | None
    """The last ``<answer>`` of the final text (outside ``<think>``), or None if there is none."""
    expected_answer: str | None
    """The entry's oracle answer (None for generators that check a solution instead)."""
    score: float
    """The generator's ``score_answer`` (0.0 without an extracted answer); equals ``reward``."""
    dataset: str


def extract_final_answer(text: str) -> str | None:
    """The content of the last ``<answer>...</answer>`` outside ``<think>...</think>`` spans.

    There is no fallback to the bare text: the prompt asks for the tags, and reasoning-gym's
    default scorer gives partial credit to any text that contains the oracle answer.
    """
    from reasoning_gym.utils import extract_answer  # the package's own tag parser

    answer: str | None = extract_answer(_THINK_SPAN.sub("", text))
    return answer


def prompt_text(body: ReasoningGymVerifyRequest) -> str:
    """Every text of the row's input (message contents and their text parts), joined."""
    raw = body.responses_create_params.model_dump(include={"input"})["input"]
    if isinstance(raw, str):
        return raw
    texts: list[str] = []
    for item in raw:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p["text"] for p in content if isinstance(p, dict) and "text" in p)
    return "\n".join(texts)


def score(ref: EntryRef, entry: dict[str, Any], answer: str | None) -> float:
    """The generator's score of ``answer`` for ``entry``, checked to be in [0, 1].

    Raises:
        RuntimeError: the generator returned something that is not a score.
    """
    if answer is None:
        return 0.0
    value = float(ref.load().score_answer(answer, entry))
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise RuntimeError(f"{ref.dataset}.score_answer returned {value}, not a score in [0, 1]")
    return value


class ReasoningGymServer(SimpleResourcesServer):
    config: ReasoningGymConfig

    def setup_webserver(self) -> FastAPI:
        registry()  # import reasoning-gym now, not during the first request
        return super().setup_webserver()

    async def verify(self, body: ReasoningGymVerifyRequest) -> ReasoningGymVerifyResponse:
        ref = body.reasoning_gym
        try:
            entry = await asyncio.to_thread(ref.entry)
        except ValueError as exc:
            raise HTTPException(422, f"reasoning_gym.config: {exc}") from None
        if self.config.require_question_in_prompt and entry["question"] not in prompt_text(body):
            raise HTTPException(
                422,
                "responses_create_params.input does not contain the question of the "
                f"reasoning_gym entry {ref.dataset}[{ref.index}] (seed {ref.seed}, size "
                f"{ref.size}); was the row written with other settings or another "
                "reasoning-gym version? Regenerate it with generate.py.",
            )
        answer = extract_final_answer(final_answer_text(body.response))
        value = await asyncio.to_thread(score, ref, entry, answer)
        expected = entry["answer"]
        return ReasoningGymVerifyResponse(
            **body.model_dump(),
            reward=value,
            extracted_answer=answer,
            expected_answer=None if expected is None else str(expected),
            score=value,
            dataset=ref.dataset,
        )


if __name__ == "__main__":
    ReasoningGymServer.run_webserver()
