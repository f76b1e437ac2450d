"""Checkers for layout instructions: markdown format, placeholders, start/end and combinations.

Neighbours: ``instruction_base`` (the ``Instruction`` model these subclass) and ``instructions``
(the registry that uses ``STRUCTURE_INSTRUCTIONS``). Semantics follow IFEval; deviations are
noted on each class.
"""

from __future__ import annotations

import json
import re

from pydantic import Field

from resources_servers.instruction_following.instruction_base import Count, Instruction, Phrase

_PLACEHOLDER_RE = re.compile(r"\[[^\[\]\n]*\S[^\[\]\n]*\]")
_BULLET_RE = re.compile(r"^[ \t]*[*+-][ \t]+\S", flags=re.MULTILINE)
# Bold first, so that **x** counts once; the text must not start or end with a space.
_HIGHLIGHT_RE = re.compile(r"\*\*(?=[^\s*])[^\n*]*(?<=\S)\*\*|\*(?=[^\s*])[^\n*]*(?<=\S)\*")
_TITLE_RE = re.compile(r"<<[^\n<>]*[^\s<>][^\n<>]*>>")
_JSON_FENCE_RE = re.compile(r"^```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?```$", re.DOTALL | re.IGNORECASE)
_TWO_RESPONSES_SEPARATOR_RE = re.compile(r"(?<!\*)\*{6}(?!\*)")
CONSTRAINED_RESPONSE_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
_QUOTE_PAIRS = (('"', '"'), ("“", "”"))


class NumberPlaceholders(Instruction):
    """At least ``num_placeholders`` square-bracket placeholders such as ``[address]`` (IFEval
    also counts an empty ``[]``; here the brackets must hold something on one line)."""

    num_placeholders: Count

    def check(self, text: str) -> bool:
        return len(_PLACEHOLDER_RE.findall(text)) >= self.num_placeholders


class Postscript(Instruction):
    """A line starts with ``postscript_marker`` (case-insensitive; a space may follow each dot,
    so ``P. S.`` matches ``P.S.``)."""

    postscript_marker: Phrase

    def check(self, text: str) -> bool:
        marker = r"\.\s?".join(re.escape(part) for part in self.postscript_marker.split("."))
        return re.search(rf"^[ \t]*{marker}", text, flags=re.MULTILINE | re.IGNORECASE) is not None


class NumberBulletLists(Instruction):
    """Exactly ``num_bullets`` markdown bullet lines (``*``, ``-`` or ``+``, a space, then text;
    unlike IFEval a ``---`` rule is not a bullet)."""

    num_bullets: Count

    def check(self, text: str) -> bool:
        return len(_BULLET_RE.findall(text)) == self.num_bullets


class ConstrainedResponse(Instruction):
    """The response contains one of IFEval's options: "My answer is yes./no./maybe."."""

    def check(self, text: str) -> bool:
        return any(option in text for option in CONSTRAINED_RESPONSE_OPTIONS)


class NumberHighlightedSections(Instruction):
    """At least ``num_highlights`` markdown highlights ``*like this*`` or ``**like this**`` on
    one line (a bullet marker ``* `` is not the start of a highlight)."""

    num_highlights: Count

    def check(self, text: str) -> bool:
        return len(_HIGHLIGHT_RE.findall(text)) >= self.num_highlights


class MultipleSections(Instruction):
    """Exactly ``num_sections`` section headers: a line starting (after optional markdown ``#``,
    ``*``, ``_`` or ``>``) with ``section_spliter`` (case-sensitive), whitespace and a number.
    IFEval accepts the marker anywhere and at least ``num_sections``."""

    section_spliter: Phrase
    num_sections: int = Field(ge=1)

    def check(self, text: str) -> bool:
        header = rf"^[ \t>#*_]*{re.escape(self.section_spliter)}\s+\d+"
        return len(re.findall(header, text, flags=re.MULTILINE)) == self.num_sections


class JsonFormat(Instruction):
    """The whole response is one JSON object or array, optionally inside one ```` ```json ````
    (or bare ```` ``` ````) fence. IFEval also accepts a bare JSON scalar such as ``5``."""

    def check(self, text: str) -> bool:
        body = text.strip()
        fenced = _JSON_FENCE_RE.match(body)
        if fenced:
            body = fenced.group(1).strip()
        try:
            value = json.loads(body)
        except ValueError:
            return False
        return isinstance(value, dict | list)


class Title(Instruction):
    """A title in double angular brackets, such as ``<<poem of joy>>``, on one line."""

    def check(self, text: str) -> bool:
        return _TITLE_RE.search(text) is not None


class TwoResponses(Instruction):
    """Two different, non-empty responses separated by exactly six asterisks ``******``."""

    def check(self, text: str) -> bool:
        parts = [p.strip() for p in _TWO_RESPONSES_SEPARATOR_RE.split(text)]
        if parts and not parts[0]:
            parts = parts[1:]
        if parts and not parts[-1]:
            parts = parts[:-1]
        return len(parts) == 2 and all(parts) and parts[0] != parts[1]


class RepeatPrompt(Instruction):
    """The response starts with ``prompt_to_repeat`` (case-insensitive, runs of whitespace
    compared as one space)."""

    prompt_to_repeat: Phrase

    def check(self, text: str) -> bool:
        said = " ".join(text.split()).lower()
        return said.startswith(" ".join(self.prompt_to_repeat.split()).lower())


class EndChecker(Instruction):
    """The response ends with ``end_phrase`` (case-insensitive, ignoring surrounding whitespace
    and a closing double quote)."""

    end_phrase: Phrase

    def check(self, text: str) -> bool:
        return text.strip().strip('"').rstrip().lower().endswith(self.end_phrase.lower())


class Quotation(Instruction):
    """The whole response is wrapped in double quotes (``"…"`` or ``“…”``)."""

    def check(self, text: str) -> bool:
        body = text.strip()
        return len(body) > 1 and any(body[0] == a and body[-1] == b for a, b in _QUOTE_PAIRS)


STRUCTURE_INSTRUCTIONS: dict[str, type[Instruction]] = {
    "detectable_content:number_placeholders": NumberPlaceholders,
    "detectable_content:postscript": Postscript,
    "detectable_format:number_bullet_lists": NumberBulletLists,
    "detectable_format:constrained_response": ConstrainedResponse,
    "detectable_format:number_highlighted_sections": NumberHighlightedSections,
    "detectable_format:multiple_sections": MultipleSections,
    "detectable_format:json_format": JsonFormat,
    "detectable_format:title": Title,
    "combination:two_responses": TwoResponses,
    "combination:repeat_prompt": RepeatPrompt,
    "startend:end_checker": EndChecker,
    "startend:quotation": Quotation,
}
