"""math_with_judge: answer extraction from the response text, and the final-text rule."""

from __future__ import annotations

import pytest

from nemo_gym.authoring import NeMoGymResponse, final_answer_text
from resources_servers.math_with_judge.extraction import extract_answer, last_boxed
from tests.helpers import model_response


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So the result is $\\boxed{42}$.", "42"),
        ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{\\sqrt{2}}{2}"),
        ("First \\boxed{1}, on reflection \\boxed{2}.", "2"),
        ("$\\boxed 5$", "5"),
        ("\\boxed{ 7 }", "7"),
        ("\\fbox{3}", "3"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{[4, \\infty)}", "[4, \\infty)"),
        ("The answer is 42.", "42"),
        ("Therefore, the final answer is: $\\frac{3}{8}$.", "\\frac{3}{8}"),
        ("**Answer:** (x-2)(x-3)", "(x-2)(x-3)"),
        ("answer = 17", "17"),
        ("Answer: 3\nThe answer is 4", "4"),
        ("The answer is 3, but \\boxed{5}", "5"),
        ("I added 3 and 4 to get 7", "7"),
        ("The total is -12.5 units", "-12.5"),
        ("We need 3/4 of it", "3/4"),
        ("There are 1,000 apples", "1,000"),
        ("Boxed once \\boxed{3}, then cut off: \\boxed{\\frac{1}{", "3"),
    ],
)
def test_answers_are_extracted(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   \n", "I do not know.", "The answer is", "\\boxed{}", "cut off \\boxed{\\frac{1}{2"],
)
def test_text_without_an_answer_yields_none(text: str) -> None:
    assert extract_answer(text) is None


def test_unclosed_box_without_earlier_box_is_not_an_answer() -> None:
    assert last_boxed("\\boxed{\\frac{1}{2}") is None


def test_the_checked_text_ignores_reasoning_and_tool_calls() -> None:
    response = NeMoGymResponse.model_validate(
        model_response(
            [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "maybe \\boxed{99}"}],
                },
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "c1",
                    "name": "calc",
                    "arguments": '{"x": "\\\\boxed{98}"}',
                    "status": "completed",
                },
                {
                    "type": "message",
                    "id": "m1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": "first part", "annotations": []},
                        {"type": "output_text", "text": "\\boxed{4}", "annotations": []},
                    ],
                },
            ]
        )
    )
    text = final_answer_text(response, scope="all")  # what app.py checks
    assert text == "first part\\boxed{4}"
    assert extract_answer(text) == "4"
