"""mcqa answer extraction: which option letter a free-text response chose.

Used by ``app.py`` (the server), which passes the response text, the options and the grading
mode. Strategies, in precedence order:

1. ``output_regex`` (the task template's own pattern; case-insensitive, last match wins);
2. explicit answer markers: ``\\boxed{...}`` and ``Answer: ...`` / ``The answer is ...``;
   the last marker in the text that names an option wins;
3. a final bare letter (the last non-empty line is just ``C``, ``(C)``, ``C.``, ``C) text``);
4. the option text itself on the last non-empty line.

A marker or line that names two different options is decisive and ambiguous: no letter.
Regular expressions cannot match balanced braces, so ``\\boxed{}`` is scanned by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

GradingMode = Literal[
    "lenient", "strict_single_letter_boxed", "lenient_boxed", "lenient_answer_colon"
]
Method = Literal["output_regex", "boxed", "answer_marker", "bare_letter", "option_text"]
Reason = Literal["no_answer_found", "multiple_options", "not_an_option"]

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|boxed)\s*\{([^{}]*)\}")
_ANSWER = re.compile(
    r"\banswer\b[*_\s]*(?:(?:is|would\s+be|will\s+be)\b\s*:?|[:=])(?:\s*(?:option|choice)\b)?",
    re.IGNORECASE,
)
_DECORATION = re.compile(r"\*\*|__|`|\$")
_EDGE_PUNCT = " \t\n.,;:!?"


@dataclass(frozen=True)
class Extraction:
    """The outcome: a letter, or no letter and the reason (with the options named, if several)."""

    letter: str | None
    method: Method | None = None
    reason: Reason | None = None
    named: tuple[str, ...] = ()


def _unwrap(text: str) -> str:
    """Strip ``\\text{}``-style wrappers (innermost first) and markdown/math decoration."""
    previous = None
    while previous != text:
        previous, text = text, _WRAPPER.sub(r"\1", text)
    return _DECORATION.sub("", text)


def normalise(text: str) -> str:
    """Option-text comparison form: unwrapped, lower-case, single spaces, no edge punctuation."""
    return " ".join(_unwrap(text).lower().split()).strip(_EDGE_PUNCT)


class _Options:
    """The allowed letters and normalised option texts, with the patterns built from them."""

    def __init__(self, options: dict[str, str]) -> None:
        self.letters = tuple(options)
        self.texts = {letter: normalise(text) for letter, text in options.items()}
        letter = "[" + "".join(self.letters) + "]"
        token = rf"\(?({letter})\)?"
        sep = r"\s*(?:,|/|&|;|\bor\b|\band\b)\s*"
        self.several = re.compile(rf"^\(?{letter}\)?(?:{sep}\(?{letter}\)?)+(?![A-Za-z0-9])")
        self.leading = re.compile(rf"^{token}(?=$|[\s.,:;)\]!?])")
        self.line = re.compile(rf"^(?:(?:option|choice)\s+)?{token}\s*(?:[.):\]-]\s*(.*))?$", re.I)

    def letters_in(self, text: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(re.findall("[" + "".join(self.letters) + "]", text)))

    def by_text(self, span: str) -> Extraction | None:
        """The option whose text the span equals or uniquely contains (as whole words)."""
        span = normalise(span)
        if not span:
            return None
        exact = [letter for letter, text in self.texts.items() if text and text == span]
        if len(exact) == 1:
            return Extraction(exact[0], "option_text")
        hits: list[tuple[int, int, str]] = []
        for letter, text in self.texts.items():
            if text:
                pattern = rf"(?<![a-z0-9]){re.escape(text)}(?![a-z0-9])"
                hits += [(m.start(), m.end(), letter) for m in re.finditer(pattern, span)]
        # An option text found only inside a longer option's match ("paris" in "paris, texas")
        # is not a separate mention.
        kept = {
            letter
            for start, end, letter in hits
            if not any(s <= start and end <= e and e - s > end - start for s, e, _ in hits)
        }
        if len(kept) == 1:
            return Extraction(kept.pop(), "option_text")
        if len(kept) > 1:
            return Extraction(None, "option_text", "multiple_options", tuple(sorted(kept)))
        return None

    def letter_then_text(self, letter: str, rest: str, method: Method) -> Extraction:
        """A letter followed by text: ambiguous if the text is exactly another option's text."""
        rest = normalise(rest)
        others = {other for other, text in self.texts.items() if text and text == rest}
        if others and letter not in others:
            return Extraction(None, method, "multiple_options", tuple(sorted({letter, *others})))
        return Extraction(letter, method)

    def interpret(
        self, span: str, method: Method, *, letters_only: bool = False
    ) -> Extraction | None:
        """What an answer span (a marker's text or a regex capture) names, if anything."""
        span = _unwrap(span).strip(_EDGE_PUNCT)
        if not span:
            return None
        if len(span.strip("()")) == 1 and span.strip("()").upper() in self.letters:
            return Extraction(span.strip("()").upper(), method)
        if (several := self.several.match(span)) is not None:
            named = self.letters_in(several.group(0))
            if len(named) > 1:
                return Extraction(None, method, "multiple_options", named)
            return Extraction(named[0], method)
        if letters_only:
            return None
        if (leading := self.leading.match(span)) is not None:
            return self.letter_then_text(leading.group(1), span[leading.end() :], method)
        found = self.by_text(span)
        return (
            None if found is None else Extraction(found.letter, method, found.reason, found.named)
        )


def _boxed_spans(text: str) -> list[tuple[int, str]]:
    """(position, content) of every ``\\boxed{...}``, braces balanced."""
    spans = []
    for match in _BOXED.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            spans.append((match.start(), text[match.end() : i - 1]))
    return spans


def _answer_spans(text: str) -> list[tuple[int, str]]:
    """(position, rest of line) after each answer marker; the next line if the rest is empty."""
    spans = []
    for match in _ANSWER.finditer(text):
        rest = text[match.end() :].lstrip(" \t*_")
        line, _, after = rest.partition("\n")
        if not line.strip(_EDGE_PUNCT + "*_"):
            line = next((ln for ln in after.split("\n") if ln.strip()), "")
        spans.append((match.start(), line))
    return spans


def _from_markers(opts: _Options, text: str, mode: GradingMode) -> Extraction | None:
    """The last marker that names something decides; unreadable markers are skipped."""
    marks: list[tuple[int, str, Method]] = []
    if mode != "lenient_answer_colon":
        marks += [(pos, span, "boxed") for pos, span in _boxed_spans(text)]
    if mode in ("lenient", "lenient_answer_colon"):
        marks += [(pos, span, "answer_marker") for pos, span in _answer_spans(text)]
    strict = mode == "strict_single_letter_boxed"
    for _, span, method in sorted(marks, key=lambda m: m[0], reverse=True):
        if method == "boxed":
            bare = _unwrap(span).strip(_EDGE_PUNCT + "()")
            if len(bare) == 1 and bare.isalpha() and bare.upper() not in opts.letters:
                return Extraction(None, method, "not_an_option", (bare.upper(),))
        found = opts.interpret(span, method, letters_only=strict)
        if found is not None:
            return found
    return None


def _last_line(text: str) -> str:
    return next((ln for ln in reversed(text.split("\n")) if _unwrap(ln).strip(_EDGE_PUNCT)), "")


def _from_last_line(opts: _Options, text: str) -> Extraction | None:
    """A final bare letter (``C``, ``(C)``, ``C.``, ``C) text``), else the option text."""
    line = _unwrap(_last_line(text)).strip(" \t")
    if (match := opts.line.match(line)) is not None:
        return opts.letter_then_text(match.group(1).upper(), match.group(2) or "", "bare_letter")
    return opts.by_text(line)


def extract_answer(
    text: str,
    options: dict[str, str],
    mode: GradingMode = "lenient",
    output_regex: str | None = None,
) -> Extraction:
    """The option ``text`` chose, by the strategies of ``mode`` (see the module docstring).

    Args:
        text: the response's final text.
        options: letter -> option text, letters upper-case.
        mode: which strategies apply (``lenient`` = all of them).
        output_regex: the template's answer pattern; its group 1 (or whole match) is the answer.
    """
    opts = _Options(options)
    if output_regex:
        matches = list(re.finditer(output_regex, text, re.IGNORECASE))
        if matches:
            last = matches[-1]
            captured = last.group(1) if last.re.groups and last.group(1) is not None else last[0]
            found = opts.interpret(captured, "output_regex")
            if found is not None:
                return found
    found = _from_markers(opts, text, mode)
    if found is None and mode == "lenient":
        found = _from_last_line(opts, text)
    return found if found is not None else Extraction(None, reason="no_answer_found")
