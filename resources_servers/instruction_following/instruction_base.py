"""The shape every checker shares: an IFEval instruction as a pydantic model of its kwargs.

A row's ``kwargs`` dict validates against the model (unknown or missing kwargs, wrong types and
bad relations are validation errors that name the kwarg), and ``check(text)`` says whether a
response follows it. The checkers live in ``lexical_checks`` and ``structure_checks``; the
registry that maps instruction ids to them is ``instructions``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: IFEval's two comparisons: "less than" is ``actual < n``, "at least" is ``actual >= n``.
Relation = Literal["less than", "at least"]
#: A threshold or count given in kwargs.
Count = Annotated[int, Field(ge=0)]
#: A keyword, phrase or marker given in kwargs: surrounding whitespace is dropped, not empty.
Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Instruction(BaseModel):
    """One verifiable instruction; its fields are the IFEval kwargs of that instruction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def check(self, text: str) -> bool:
        """Whether ``text`` follows the instruction."""
        raise NotImplementedError


def compare(actual: int, relation: Relation, threshold: int) -> bool:
    """Apply an IFEval relation: ``actual < threshold`` or ``actual >= threshold``."""
    return actual < threshold if relation == "less than" else actual >= threshold


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A case-insensitive pattern for ``phrase`` as whole words (any whitespace between words).

    IFEval uses the keyword as a raw regex and matches substrings (``cat`` in ``category``);
    here the keyword is literal and must not touch other letters or digits.
    """
    body = r"\s+".join(re.escape(part) for part in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", flags=re.IGNORECASE)
