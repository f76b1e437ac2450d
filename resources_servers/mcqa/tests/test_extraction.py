"""mcqa extraction: every strategy, its precedence and the ambiguous cases, without HTTP."""

from __future__ import annotations

import pytest

from resources_servers.mcqa.extraction import GradingMode, extract_answer

OPTIONS = {"A": "Paris", "B": "London", "C": "Berlin, Germany", "D": r"$\frac{1}{2}$"}


@pytest.mark.parametrize(
    ("text", "letter", "method"),
    [
        # a final bare letter
        ("C", "C", "bare_letter"),
        ("(C)", "C", "bare_letter"),
        ("C.", "C", "bare_letter"),
        ("c", "C", "bare_letter"),
        ("**C**", "C", "bare_letter"),
        ("Option C", "C", "bare_letter"),
        ("Some reasoning first.\n\nB\n\n", "B", "bare_letter"),
        ("C) Berlin, Germany", "C", "bare_letter"),
        ("The answer is not obvious.\nB", "B", "bare_letter"),
        # answer markers
        ("Answer: C", "C", "answer_marker"),
        ("The answer is C", "C", "answer_marker"),
        ("so the answer is (C).", "C", "answer_marker"),
        ("**Answer:** C", "C", "answer_marker"),
        ("Final answer: c", "C", "answer_marker"),
        ("The correct answer is option B.", "B", "answer_marker"),
        ("Answer:\n\nB", "B", "answer_marker"),
        ("The answer is C because Paris is not in Germany.", "C", "answer_marker"),
        ("Answer: C. Berlin, Germany.", "C", "answer_marker"),
        ("Answer: london", "B", "answer_marker"),
        # boxed
        (r"\boxed{C}", "C", "boxed"),
        (r"\boxed{\text{C}}", "C", "boxed"),
        (r"\boxed{(C)}", "C", "boxed"),
        (r"$\boxed{\textbf{B}}$", "B", "boxed"),
        (r"\boxed{\text{berlin,  GERMANY}}", "C", "boxed"),
        (r"\boxed{\frac{1}{2}}", "D", "boxed"),
        # the option text itself
        ("paris", "A", "option_text"),
        ("I am fairly sure it is Berlin, Germany.", "C", "option_text"),
        (r"\text{London}", "B", "option_text"),
    ],
)
def test_each_strategy_finds_the_letter(text: str, letter: str, method: str) -> None:
    found = extract_answer(text, OPTIONS)
    assert (found.letter, found.method, found.reason) == (letter, method, None)


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("Answer: A or C", "answer_marker"),
        ("The answer is A, C", "answer_marker"),
        ("answer: (A) and (C)", "answer_marker"),
        (r"\boxed{A, C}", "boxed"),
        (r"\boxed{A/C}", "boxed"),
        ("Answer: C. Paris", "answer_marker"),
        ("C) Paris", "bare_letter"),
        ("Paris or Berlin, Germany", "option_text"),
        (r"\boxed{Paris or Berlin, Germany}", "boxed"),
    ],
)
def test_naming_two_options_is_no_answer(text: str, method: str) -> None:
    found = extract_answer(text, OPTIONS)
    assert found.letter is None and found.reason == "multiple_options" and found.method == method
    assert found.named == ("A", "C")


@pytest.mark.parametrize(
    "text",
    ["", "I don't know.", "A good question.", "1/2", "The answer is not obvious.", r"\boxed{}"],
)
def test_nothing_usable_is_no_answer_found(text: str) -> None:
    found = extract_answer(text, OPTIONS)
    assert (found.letter, found.method, found.reason) == (None, None, "no_answer_found")


def test_a_boxed_letter_that_is_not_an_option_is_decisive() -> None:
    found = extract_answer("Answer: A\n\\boxed{E}", OPTIONS)
    assert (found.letter, found.reason, found.named) == (None, "not_an_option", ("E",))


@pytest.mark.parametrize(
    ("text", "letter", "method"),
    [
        ("Answer: A\nWait, no.\n\\boxed{C}", "C", "boxed"),
        ("\\boxed{A}\nhmm\nAnswer: D", "D", "answer_marker"),
        ("\\boxed{B} then \\boxed{D}", "D", "boxed"),
        # markers beat a final bare letter, and a bare letter beats option text elsewhere
        ("Answer: B\nA", "B", "answer_marker"),
        ("Paris seems likely.\nB", "B", "bare_letter"),
        # an unreadable later marker does not hide an earlier readable one
        ("Answer: B\nThe answer is hard to state.", "B", "answer_marker"),
    ],
)
def test_precedence_and_last_marker_wins(text: str, letter: str, method: str) -> None:
    found = extract_answer(text, OPTIONS)
    assert (found.letter, found.method) == (letter, method)


@pytest.mark.parametrize(
    ("mode", "text", "letter"),
    [
        ("strict_single_letter_boxed", r"\boxed{C}", "C"),
        ("strict_single_letter_boxed", r"\boxed{\text{C}}", "C"),
        ("strict_single_letter_boxed", r"\boxed{Berlin, Germany}", None),
        ("strict_single_letter_boxed", r"\boxed{C. Berlin}", None),
        ("strict_single_letter_boxed", "Answer: C", None),
        ("strict_single_letter_boxed", "C", None),
        ("lenient_boxed", r"\boxed{Berlin, Germany}", "C"),
        ("lenient_boxed", r"\boxed{C}", "C"),
        ("lenient_boxed", "Answer: C", None),
        ("lenient_boxed", "C", None),
        ("lenient_answer_colon", "Answer: C", "C"),
        ("lenient_answer_colon", "Answer: Berlin, Germany", "C"),
        ("lenient_answer_colon", r"\boxed{C}", None),
        ("lenient_answer_colon", "C", None),
        ("lenient", "C", "C"),
    ],
)
def test_grading_modes_limit_the_strategies(mode: GradingMode, text: str, letter: str) -> None:
    assert extract_answer(text, OPTIONS, mode).letter == letter


def test_strict_mode_still_reports_two_boxed_letters_as_ambiguous() -> None:
    found = extract_answer(r"\boxed{A, C}", OPTIONS, "strict_single_letter_boxed")
    assert found.letter is None and found.reason == "multiple_options"


@pytest.mark.parametrize(
    ("text", "letter", "method"),
    [
        ("Final choice: b, no wait. FINAL CHOICE: (d)", "D", "output_regex"),
        ("final choice: london", "B", "output_regex"),
        ("final choice: A or C", None, "output_regex"),
        # the template regex did not match: fall back to the grading mode's strategies
        ("I pick \\boxed{C}", "C", "boxed"),
        ("final choice: nothing I can say", None, None),
    ],
)
def test_template_regex_goes_first(text: str, letter: str | None, method: str | None) -> None:
    found = extract_answer(text, OPTIONS, "lenient_boxed", r"final choice:\s*([^.\n]+)")
    assert (found.letter, found.method) == (letter, method)


def test_template_regex_without_a_group_uses_the_whole_match() -> None:
    assert extract_answer("blah (B) blah", OPTIONS, output_regex=r"\([a-d]\)").letter == "B"


def test_letters_come_only_from_the_option_keys() -> None:
    three = {"A": "red", "B": "green", "C": "blue"}
    assert extract_answer("D", three).letter is None
    assert extract_answer("Answer: D", three).letter is None
    assert extract_answer("Answer: D\nB", three).letter == "B"


def test_an_option_text_inside_a_longer_one_is_not_a_second_mention() -> None:
    options = {"A": "Paris", "B": "Paris, Texas", "C": "O(n)", "D": "O(n log n)"}
    assert extract_answer("It is Paris, Texas.", options).letter == "B"
    assert extract_answer("Answer: O(n log n)", options).letter == "D"
    assert extract_answer("Paris", options).letter == "A"
