"""Find the program in a model response: the last Python code block of the final message.

Rule: the final assistant text is ``final_answer_text(response)`` (``nemo_gym.resources``: the
``output_text`` parts of the **last** assistant message; reasoning and earlier messages are
ignored). In it, a code block
is a fenced block opened by a line of three or more backticks (or tildes), at most three spaces
indented, optionally followed by a language tag, and closed by a line of at least as many of
the same character. Blocks tagged ``python``, ``py``, ``python3`` or untagged count; the last
such closed block is the program. An unclosed block (a truncated answer) does not count, nor
does a block with only whitespace. ``app.py`` calls ``extract_code``.
"""

from __future__ import annotations

import re

PYTHON_TAGS = frozenset({"", "python", "py", "python3"})
# Hand-written: a CommonMark parser would also do, but none is a declared dependency.
OPENING = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[^\s`]*)[^`]*$")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every closed fenced block as ``(lowercased tag, body)``, in order."""
    blocks: list[tuple[str, str]] = []
    fence: str | None = None
    tag, body = "", list[str]()
    for line in text.splitlines():
        if fence is None:
            match = OPENING.match(line)
            if match:
                fence, tag, body = match["fence"], match["tag"].lower(), []
        elif line.strip() and set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence):
            blocks.append((tag, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    return blocks


def extract_code(text: str) -> str | None:
    """The last closed Python (or untagged) block's code, or None if there is none."""
    for tag, body in reversed(code_blocks(text)):
        if tag in PYTHON_TAGS and body.strip():
            return body
    return None
