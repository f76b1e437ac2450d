"""How the instruction checkers cut a response into words, sentences and paragraphs.

Used by ``lexical_checks`` and ``structure_checks``. Every rule is a documented regex (IFEval's
own helpers need NLTK's punkt data, which cannot be downloaded here):

* A **word** is a run of letters/digits/underscores, joined across inner hyphens and apostrophes
  (``well-known``, ``don't`` are one word each) and across a ``.`` or ``,`` between digits
  (``3.14``, ``1,000`` are one word each). IFEval's ``\\w+`` tokenizer would count
  ``well-known`` as two.
* A **sentence** ends at a run of ``.``, ``!``, ``?`` or ``…`` (optionally followed by closing
  quotes or brackets) that is followed by whitespace or the end of the text, and at a blank line.
  A ``.`` does not end a sentence after a known abbreviation (``Dr.``, ``Mr.``, ``vs.`` ...), after
  a token that already holds a dot (``e.g.``, ``U.S.``) or after a single capital initial
  (``J. Smith``). Only fragments that contain a letter count, so a list marker ``1.`` is not a
  sentence, and text without final punctuation still counts as a sentence.
* **Blank-line paragraphs** are separated by one or more empty (or whitespace-only) lines;
  **divider paragraphs** by a line holding only the markdown divider ``***``.
"""

from __future__ import annotations

import re

WORD_RE = re.compile(r"\w+(?:(?:[-'’]|(?<=\d)[.,](?=\d))\w+)*")
_TERMINATOR_RE = re.compile(r"([.!?…]+)[\"'”’)\]]*(?=\s|$)")
_LAST_TOKEN_RE = re.compile(r"(\S+)$")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_DIVIDER_RE = re.compile(r"^[ \t]*\*\*\*[ \t]*$", flags=re.MULTILINE)
_LETTER_RE = re.compile(r"[^\W\d_]")
ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "mt", "approx", "dept", "fig"}
    | {"inc", "ltd", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "oct"}
    | {"nov", "dec"}
)


def words(text: str) -> list[str]:
    """The words of ``text`` (see the module docstring for what a word is)."""
    return WORD_RE.findall(text)


def _is_abbreviation(text: str, dot_at: int) -> bool:
    """Whether the ``.`` at ``dot_at`` closes an abbreviation rather than a sentence."""
    match = _LAST_TOKEN_RE.search(text, 0, dot_at)
    if match is None:
        return False
    token = match.group(1).lstrip("\"'“‘([")
    if "." in token:
        return True
    return token.lower() in ABBREVIATIONS or (len(token) == 1 and token.isupper())


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see the module docstring for the rule)."""
    pieces: list[str] = []
    start = 0
    for match in _TERMINATOR_RE.finditer(text):
        if match.group(1) == "." and _is_abbreviation(text, match.start()):
            continue
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    found: list[str] = []
    for piece in pieces:
        for part in _BLANK_LINE_RE.split(piece):
            if _LETTER_RE.search(part):
                found.append(part.strip())
    return found


def blank_line_paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs of ``text``, split at blank lines, stripped."""
    return [p.strip() for p in _BLANK_LINE_RE.split(text) if p.strip()]


def divider_paragraphs(text: str) -> list[str] | None:
    """The paragraphs of ``text`` split at ``***`` divider lines, or None if one is empty.

    Empty text before the first or after the last divider is ignored; an empty paragraph between
    two dividers makes the layout invalid (None), as in IFEval.
    """
    parts = [p.strip() for p in _DIVIDER_RE.split(text)]
    if parts and not parts[0]:
        parts = parts[1:]
    if parts and not parts[-1]:
        parts = parts[:-1]
    if any(not p for p in parts):
        return None
    return parts
