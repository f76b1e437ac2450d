"""math_with_judge: find the model's final answer in its response text.

Pure string work, run in the server process; ``library`` then checks the extracted answer
against the gold answer with math-verify and ``judge`` asks an LLM when that check cannot
decide. The order of preference is: the last ``\\boxed{...}`` (or ``\\fbox{...}``), else the
last "The answer is X" / "Answer: X" phrase, else the last bare number in the text.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
#: "The (final) answer is X", "Answer: X", "answer = X"; X runs to the end of the line.
_ANSWER_PHRASE = re.compile(
    r"\banswer\b\s*(?:\*\*)?\s*(?:is\s*:?|:|=)\s*(?P<answer>[^\n]+)", re.IGNORECASE
)
#: An integer, decimal or simple fraction, with optional thousands separators.
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?![\w])")
_MATH_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def _braced(text: str, start: int) -> str | None:
    """The content of the ``{...}`` group opening at ``text[start]``, or None if unbalanced."""
    # A regex cannot match nested braces; a depth counter is the simplest correct scanner.
    depth = 0
    for i in range(start, len(text)):
        char = text[i]
        # An escaped brace such as \{ in a set is content, not structure.
        if char == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif char == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last well-formed ``\\boxed{...}``/``\\fbox{...}`` in ``text``.

    ``\\boxed 5`` (no braces, as LaTeX allows) yields the token after it. An unclosed last box
    falls back to the box before it.
    """
    for match in reversed(list(_BOXED.finditer(text))):
        rest = match.end()
        while rest < len(text) and text[rest] == " ":
            rest += 1
        if rest < len(text) and text[rest] == "{":
            content = _braced(text, rest)
        else:
            token = re.match(r"[^\s$\\]+", text[rest:])
            content = token.group(0) if token else None
        if content is not None and content.strip():
            return content.strip()
    return None


def _clean(answer: str) -> str:
    """Strip markdown bold, math delimiters and trailing punctuation from a phrase answer."""
    answer = answer.strip().strip("*").strip()
    answer = re.sub(r"[.;,!]+$", "", answer).strip()
    for left, right in _MATH_DELIMITERS:
        if answer.startswith(left) and answer.endswith(right) and len(answer) > len(left):
            answer = answer[len(left) : len(answer) - len(right)].strip()
            break
    return re.sub(r"[.;,!]+$", "", answer).strip()


def extract_answer(text: str) -> str | None:
    """The model's final answer in ``text``, or None when there is none.

    Args:
        text: the response's final text (``final_answer_text(response, scope="all")``).

    Returns:
        The last boxed content; else the answer of the last "answer is/Answer:" phrase; else
        the last bare number (both searched before an unclosed ``\\boxed{``). None for empty
        text or text with none of these.
    """
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    if boxes := list(_BOXED.finditer(text)):
        text = text[: boxes[-1].start()]  # an unclosed last box (truncated output) is no answer
    phrases = list(_ANSWER_PHRASE.finditer(text))
    for phrase in reversed(phrases):
        answer = _clean(phrase.group("answer"))
        if answer:
            return answer
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None
