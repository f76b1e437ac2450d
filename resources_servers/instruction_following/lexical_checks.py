"""Checkers for word-level instructions: keywords, lengths, letter case and commas.

Neighbours: ``instruction_base`` (the ``Instruction`` model these subclass), ``text_units`` (how
words, sentences and paragraphs are counted) and ``instructions`` (the registry that uses
``LEXICAL_INSTRUCTIONS``). Semantics follow IFEval; deviations are noted on each class.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Self

from pydantic import Field, model_validator

from resources_servers.instruction_following import text_units
from resources_servers.instruction_following.instruction_base import (
    Count,
    Instruction,
    Phrase,
    Relation,
    compare,
    phrase_pattern,
)


class KeywordExistence(Instruction):
    """Every keyword appears at least once (whole words, case-insensitive)."""

    keywords: list[Phrase] = Field(min_length=1)

    def check(self, text: str) -> bool:
        return all(phrase_pattern(k).search(text) for k in self.keywords)


class KeywordFrequency(Instruction):
    """The keyword appears ``relation`` ``frequency`` times (whole words, case-insensitive)."""

    keyword: Phrase
    frequency: Count
    relation: Relation

    def check(self, text: str) -> bool:
        found = len(phrase_pattern(self.keyword).findall(text))
        return compare(found, self.relation, self.frequency)


class ForbiddenWords(Instruction):
    """None of the words appears (whole words, case-insensitive)."""

    forbidden_words: list[Phrase] = Field(min_length=1)

    def check(self, text: str) -> bool:
        return not any(phrase_pattern(w).search(text) for w in self.forbidden_words)


class LetterFrequency(Instruction):
    """The letter appears ``let_relation`` ``let_frequency`` times (case-insensitive)."""

    letter: str = Field(pattern=r"^[^\W\d_]$")
    let_frequency: Count
    let_relation: Relation

    def check(self, text: str) -> bool:
        found = Counter(text.lower())[self.letter.lower()]
        return compare(found, self.let_relation, self.let_frequency)


class NumberWords(Instruction):
    """The response has ``relation`` ``num_words`` words (``text_units.words``)."""

    num_words: Count
    relation: Relation

    def check(self, text: str) -> bool:
        return compare(len(text_units.words(text)), self.relation, self.num_words)


class NumberSentences(Instruction):
    """The response has ``relation`` ``num_sentences`` sentences (``text_units.sentences``)."""

    num_sentences: Count
    relation: Relation

    def check(self, text: str) -> bool:
        return compare(len(text_units.sentences(text)), self.relation, self.num_sentences)


class NumberParagraphs(Instruction):
    """Exactly ``num_paragraphs`` non-empty paragraphs separated by ``***`` divider lines."""

    num_paragraphs: int = Field(ge=1)

    def check(self, text: str) -> bool:
        paragraphs = text_units.divider_paragraphs(text)
        return paragraphs is not None and len(paragraphs) == self.num_paragraphs


class NthParagraphFirstWord(Instruction):
    """Exactly ``num_paragraphs`` blank-line paragraphs; paragraph ``nth_paragraph`` (from 1)
    starts with ``first_word`` (case-insensitive, leading quotes and markup ignored)."""

    num_paragraphs: int = Field(ge=1)
    nth_paragraph: int = Field(ge=1)
    first_word: Phrase

    @model_validator(mode="after")
    def _nth_within_count(self) -> Self:
        if self.nth_paragraph > self.num_paragraphs:
            raise ValueError("nth_paragraph must not exceed num_paragraphs")
        return self

    def check(self, text: str) -> bool:
        paragraphs = text_units.blank_line_paragraphs(text)
        if len(paragraphs) != self.num_paragraphs:
            return False
        first = text_units.words(paragraphs[self.nth_paragraph - 1])
        return bool(first) and first[0].lower() == self.first_word.lower()


class EnglishLowercase(Instruction):
    """No uppercase letters and at least one lowercase one. The language itself is not checked
    (IFEval also asks langdetect for English; no detector is installed here)."""

    def check(self, text: str) -> bool:
        return text.islower()


class EnglishCapital(Instruction):
    """No lowercase letters and at least one uppercase one (language not checked, as above)."""

    def check(self, text: str) -> bool:
        return text.isupper()


class CapitalWordFrequency(Instruction):
    """Words written all in capitals (``text_units.words``, e.g. ``NASA``, ``WELL-KNOWN``,
    ``I``) appear ``capital_relation`` ``capital_frequency`` times."""

    capital_frequency: Count
    capital_relation: Relation

    def check(self, text: str) -> bool:
        found = sum(1 for word in text_units.words(text) if word.isupper())
        return compare(found, self.capital_relation, self.capital_frequency)


_COMMA_RE = re.compile(r"[,，、]")


class NoComma(Instruction):
    """No comma at all (ASCII ``,``, fullwidth ``，`` or ideographic ``、``)."""

    def check(self, text: str) -> bool:
        return _COMMA_RE.search(text) is None


LEXICAL_INSTRUCTIONS: dict[str, type[Instruction]] = {
    "keywords:existence": KeywordExistence,
    "keywords:frequency": KeywordFrequency,
    "keywords:forbidden_words": ForbiddenWords,
    "keywords:letter_frequency": LetterFrequency,
    "length_constraints:number_words": NumberWords,
    "length_constraints:number_sentences": NumberSentences,
    "length_constraints:number_paragraphs": NumberParagraphs,
    "length_constraints:nth_paragraph_first_word": NthParagraphFirstWord,
    "change_case:english_lowercase": EnglishLowercase,
    "change_case:english_capital": EnglishCapital,
    "change_case:capital_word_frequency": CapitalWordFrequency,
    "punctuation:no_comma": NoComma,
}
