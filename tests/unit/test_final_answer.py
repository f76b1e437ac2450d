"""final_answer_text: the one reading of "the model's final answer", in every scope."""

from __future__ import annotations

from typing import Any

import pytest

from nemo_gym.openai_utils import NeMoGymResponse
from nemo_gym.resources import final_answer_text
from tests.helpers import model_response


def say(text: str, *parts: str, n: int = 0) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"m{n}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": t, "annotations": []} for t in (text, *parts)],
    }


CALL = {"type": "function_call", "id": "f", "call_id": "c", "name": "t", "arguments": "{}"}
RESULT = {"type": "function_call_output", "call_id": "c", "output": "42"}
THOUGHT = {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": "hmm"}]}
OUTPUT = [
    say("Let me check.", n=1),
    CALL,
    RESULT,
    say("It is ", "42.", n=2),
    THOUGHT,
    say("Done.", n=3),
]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("last_message", "Done."),
        ("trailing", "It is 42.\nDone."),
        ("all", "Let me check.\nIt is 42.\nDone."),
    ],
)
def test_scopes_on_the_typed_response_and_on_plain_dicts(scope: Any, expected: str) -> None:
    typed = NeMoGymResponse.model_validate(model_response(OUTPUT))
    assert final_answer_text(typed, scope) == expected
    assert final_answer_text(model_response(OUTPUT), scope) == expected
    assert final_answer_text(OUTPUT, scope) == expected


def test_no_answer_is_empty_text() -> None:
    assert final_answer_text(model_response([CALL, RESULT, THOUGHT])) == ""
    assert final_answer_text(model_response([say("x"), CALL]), "trailing") == ""
