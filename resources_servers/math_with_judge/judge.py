"""math_with_judge: the optional LLM judge of mathematical equivalence.

``app`` consults it only when math-verify did not find the answer equal. The prompt is in the
Arena-Hard style: two "assistants'" answers to the problem, and a verdict label ``[[A=B]]``
(equivalent) or ``[[A!=B]]`` (different). The judge runs with the gold answer first; if it says
equal, it runs again with the order swapped (against positional bias), and the reward is 1.0
only when both passes say equal. A judge that fails (HTTP error, no connection, timeout, a body
that is not a response, or a last output text with no label) raises :class:`JudgeError`, which
``/verify`` answers as HTTP 502: a judge failure is never scored as "not equal".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from nemo_gym.authoring import (
    GymError,
    NeMoGymResponse,
    NeMoGymResponseCreateParamsNonStreaming,
    ServerClient,
    final_answer_text,
)

EQUAL_LABEL = "[[A=B]]"
NOT_EQUAL_LABEL = "[[A!=B]]"

JUDGE_SYSTEM_MESSAGE = f"""Please act as an impartial judge and evaluate the equivalence of the \
solutions given by two AI assistants to the mathematical problem displayed below. You will be \
given AI assistant A's answer and AI assistant B's answer. Your job is to evaluate whether \
assistant A's answer is equivalent to assistant B's answer.

Consider the mathematical equivalence of the AI assistants' answers above all other \
considerations. If the problem requests special formatting instructions, you may disregard any \
formatting considerations when evaluating the answers -- consider only mathematical equivalence.

After evaluating both answers for equivalence, you must output only one of the following \
choices as your final verdict with a label:

1. The AI assistants' answers are equivalent: {EQUAL_LABEL}
2. The AI assistants' answers are different: {NOT_EQUAL_LABEL}

Example output: "My final verdict is different {NOT_EQUAL_LABEL}"."""

JUDGE_PROMPT_TEMPLATE = """<|User Prompt|>
{question}

<|The Start of Assistant A's Answer|>
{first_answer}
<|The End of Assistant A's Answer|>

<|The Start of Assistant B's Answer|>
{second_answer}
<|The End of Assistant B's Answer|>"""

Verdict = Literal["equal", "not_equal"]


class JudgeError(Exception):
    """The judge could not give a verdict; the message names the judge server and the cause."""


class JudgeEvaluation(BaseModel):
    """One judge pass as recorded on the row."""

    responses_create_params: NeMoGymResponseCreateParamsNonStreaming
    response: NeMoGymResponse
    verdict: Verdict


def parse_verdict(text: str) -> Verdict | None:
    """The verdict of the label that appears first in ``text``; None if neither appears."""
    equal, not_equal = text.find(EQUAL_LABEL), text.find(NOT_EQUAL_LABEL)
    if equal < 0 and not_equal < 0:
        return None
    if not_equal < 0 or 0 <= equal < not_equal:
        return "equal"
    return "not_equal"


def judge_request(
    base: NeMoGymResponseCreateParamsNonStreaming,
    question: str,
    first_answer: str,
    second_answer: str,
) -> NeMoGymResponseCreateParamsNonStreaming:
    """The judge's create params: ``base`` with its ``input`` replaced by the judge prompt."""
    prompt = JUDGE_PROMPT_TEMPLATE.format(
        question=question, first_answer=first_answer, second_answer=second_answer
    )
    params: dict[str, Any] = base.model_dump(mode="json", exclude_unset=True)
    params["input"] = [
        {"role": "system", "content": JUDGE_SYSTEM_MESSAGE},
        {"role": "user", "content": prompt},
    ]
    return NeMoGymResponseCreateParamsNonStreaming.model_validate(params)


async def ask_judge(
    client: ServerClient,
    server_name: str,
    params: NeMoGymResponseCreateParamsNonStreaming,
    timeout_s: float,
) -> JudgeEvaluation:
    """One judge pass.

    Raises:
        JudgeError: the call failed or the answer holds no verdict label.
    """
    where = f"judge model server {server_name!r}"
    try:
        resp = await client.post(server_name, "/v1/responses", json=params, timeout_s=timeout_s)
    except GymError as exc:  # connection error, timeout, unknown server name
        raise JudgeError(f"{where} could not be reached: {exc}") from exc
    if not resp.ok:
        detail = resp.body[:500].decode(errors="replace")
        raise JudgeError(f"{where} answered HTTP {resp.status}: {detail}")
    try:
        response = NeMoGymResponse.model_validate(resp.json_sync())
    except ValueError as exc:  # not JSON (orjson) or not a response (pydantic)
        raise JudgeError(
            f"{where} answered a body that is not a Responses API response: {exc}"
        ) from exc
    text = final_answer_text(response)
    verdict = parse_verdict(text)
    if verdict is None:
        raise JudgeError(
            f"{where} answered without a verdict label ({EQUAL_LABEL} or {NOT_EQUAL_LABEL}); "
            f"its last output text ends with: {text[-300:]!r}"
        )
    return JudgeEvaluation(responses_create_params=params, response=response, verdict=verdict)


async def judge_equivalence(
    client: ServerClient,
    server_name: str,
    base: NeMoGymResponseCreateParamsNonStreaming,
    *,
    question: str,
    expected_answer: str,
    generated_answer: str,
    timeout_s: float,
) -> tuple[float, list[JudgeEvaluation]]:
    """Judge twice (gold first, then swapped if the first pass says equal).

    Returns:
        The reward (1.0 only if every pass said equal) and the passes made.

    Raises:
        JudgeError: a pass failed.
    """
    first = await ask_judge(
        client,
        server_name,
        judge_request(base, question, expected_answer, generated_answer),
        timeout_s,
    )
    if first.verdict != "equal":
        return 0.0, [first]
    second = await ask_judge(
        client,
        server_name,
        judge_request(base, question, generated_answer, expected_answer),
        timeout_s,
    )
    return (1.0 if second.verdict == "equal" else 0.0), [first, second]
