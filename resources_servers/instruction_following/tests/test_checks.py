"""instruction_following: every checker on a following and a violating text, and the edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from resources_servers.instruction_following import text_units
from resources_servers.instruction_following.instructions import (
    INSTRUCTIONS,
    InstructionError,
    build_instruction,
    follow_list,
)

# (instruction id, kwargs, a text that follows it, a text that violates it)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "keywords:existence",
        {"keywords": ["Basil", "Friday"]},
        "Water the basil on friday.",
        "Water the basilisk on Friday.",
    ),
    (
        "keywords:frequency",
        {"keyword": "water", "frequency": 2, "relation": "at least"},
        "Water it; water helps.",
        "Water it, then waterfall.",
    ),
    (
        "keywords:frequency",
        {"keyword": "water", "frequency": 2, "relation": "less than"},
        "Water it once.",
        "Water, WATER.",
    ),
    (
        "keywords:forbidden_words",
        {"forbidden_words": ["lose", "fail"]},
        "Losers failed? No: we WIN.",
        "We never LOSE.",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 2, "let_relation": "at least"},
        "Zany zebra",
        "Lazy dog",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "less than"},
        "A well-known, self-evident fact.",
        "One two three four five.",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 4, "relation": "at least"},
        "Don't pay 1,000 dollars.",
        "Pay 3.14 dollars.",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "Dr. Smith met Mr. Jones. They talked.",
        "One. Two! Three?",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": "at least"},
        "It rained. We stayed in",
        "It rained, e.g. on Monday.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First.\n***\nSecond.",
        "First.\n***\n\n***\nSecond.",
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "However"},
        'Tea is good.\n\n"However, coffee..."',
        "Tea is good.\n\nBut however coffee.",
    ),
    ("change_case:english_lowercase", {}, "all lower, 123 numbers & symbols!", "all lower but One"),
    ("change_case:english_capital", {}, "ALL CAPS, 123 & SYMBOLS!", "ALL CAPS bUT ONE"),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "GO team, WELL-DONE!",
        "Go TEAM, well-done!",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "Go TEAM.",
        "GO TEAM.",
    ),
    ("punctuation:no_comma", {}, "No commas here.", "One，two"),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name] of [address]",
        "Dear [name] of [] and [\n]",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "Hi.\n\np. s. see you",
        "Hi. P.S. is not at a line start",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Hi.\nP.P.S bye",
        "Hi.\nP.S. bye",
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "Intro\n* one\n  - two\n---",
        "* one\n* two\n+ three",
    ),
    (
        "detectable_format:constrained_response",
        {},
        "Well. My answer is maybe.",
        "My answer is perhaps.",
    ),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "* item with *one* and **two**",
        "* item\n* item *\n**bold**",
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nA\n## SECTION 2\nB",
        "SECTION 1\nA and see SECTION 2 below",
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": [1, 2]}\n```', 'Here it is: {"a": 1}'),
    ("detectable_format:json_format", {}, '  [1, "two"]  ', "```json\n{'a': 1}\n```"),
    ("detectable_format:title", {}, "<<Poem of Joy>>\nLa la", "<< >>\n<<broken\ntitle>>"),
    (
        "combination:two_responses",
        {},
        "Bean There\n******\nDaily Grind",
        "Bean There\n*******\nDaily",
    ),
    ("combination:two_responses", {}, "******\nA\n******\nB\n", "Same\n******\nSame"),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a  slogan."},
        "write a slogan.\nRide on!",
        "Sure! Write a slogan. Ride on!",
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        'Done. any other questions?"\n',
        "Any other questions? Bye.",
    ),
    ("startend:quotation", {}, '  "Yes, swim."  ', '"Yes, swim.'),
    ("startend:quotation", {}, "“Curly quotes.”", "'Single quotes.'"),
]


@pytest.mark.parametrize(("instruction_id", "kwargs", "follows", "violates"), CASES)
def test_checker_tells_following_from_violating(
    instruction_id: str, kwargs: dict[str, Any], follows: str, violates: str
) -> None:
    instruction = build_instruction(0, instruction_id, kwargs)
    assert instruction.check(follows) is True
    assert instruction.check(violates) is False


def test_every_registered_instruction_has_a_case() -> None:
    assert {case[0] for case in CASES} == set(INSTRUCTIONS)


def test_word_count_joins_hyphens_apostrophes_and_numbers() -> None:
    text = "A well-known fact: don't pay 1,000 or 3.14 dollars -- ok?"
    assert text_units.words(text) == [
        "A", "well-known", "fact", "don't", "pay", "1,000", "or", "3.14", "dollars", "ok",
    ]  # fmt: skip


def test_sentence_split_respects_abbreviations_initials_and_list_markers() -> None:
    text = 'Dr. Smith saw J. K. Rowling in the U.S. today. He said "hi!" Then left...\n1. Item'
    assert text_units.sentences(text) == [
        "Dr. Smith saw J. K. Rowling in the U.S. today.",
        'He said "hi!"',
        "Then left...",
        "Item",
    ]
    assert text_units.sentences("Heading\n\nBody without a full stop") == [
        "Heading",
        "Body without a full stop",
    ]


def test_loose_mode_forgives_a_chatty_first_line_and_markdown() -> None:
    title_and_json = [build_instruction(0, "detectable_format:json_format", {})]
    text = 'Sure, here is the JSON:\n{"a": 1}'
    assert follow_list(title_and_json, text, loose=False) == [False]
    assert follow_list(title_and_json, text, loose=True) == [True]
    ending = [build_instruction(0, "startend:end_checker", {"end_phrase": "Bye now"})]
    assert follow_list(ending, "Thanks. **Bye now**", loose=False) == [False]
    assert follow_list(ending, "Thanks. **Bye now**", loose=True) == [True]


def test_empty_text_follows_nothing() -> None:
    lenient = [
        build_instruction(0, "punctuation:no_comma", {}),
        build_instruction(
            1, "length_constraints:number_words", {"num_words": 9, "relation": "less than"}
        ),
    ]
    assert follow_list(lenient, "  \n", loose=False) == [False, False]
    assert follow_list(lenient, "  \n", loose=True) == [False, False]


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "named"),
    [
        ("keywords:nonsense", {}, "'keywords:nonsense' is not a known instruction id"),
        ("language:response_language", {"language": "fr"}, "not supported"),
        ("length_constraints:number_words", {"num_words": 5}, "relation: Field required"),
        ("length_constraints:number_words", {"num_words": 5, "relation": "at most"}, "relation"),
        ("length_constraints:number_words", {"num_words": -1, "relation": "at least"}, "num_words"),
        ("keywords:existence", {"keywords": []}, "keywords"),
        ("keywords:existence", {"keywords": ["a"], "keyword": "b"}, "keyword: Extra inputs"),
        (
            "keywords:letter_frequency",
            {"letter": "ab", "let_frequency": 1, "let_relation": "at least"},
            "letter",
        ),
        ("punctuation:no_comma", {"strict": True}, "strict: Extra inputs"),
        (
            "length_constraints:nth_paragraph_first_word",
            {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "x"},
            "nth_paragraph must not exceed num_paragraphs",
        ),
    ],
)
def test_bad_instructions_are_rejected_naming_the_problem(
    instruction_id: str, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(InstructionError, match=r"instruction 0 ") as caught:
        build_instruction(0, instruction_id, kwargs)
    assert named in str(caught.value)


def test_null_kwargs_are_dropped_as_in_hf_ifeval_rows() -> None:
    instruction = build_instruction(
        0, "detectable_format:title", {"num_words": None, "relation": None, "keywords": None}
    )
    assert instruction.check("<<t>>")
