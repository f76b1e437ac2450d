"""The registry of supported IFEval instruction ids, and how a row's instructions are checked.

The checkers are written by hand because no maintained library fits offline: lm-eval's ifeval
pulls datasets/evaluate/scikit-learn and downloads NLTK punkt at import, and nvidia-ifbench needs
langchain, spaCy models and NLTK data, none of which can be downloaded here.

Neighbours: ``lexical_checks`` and ``structure_checks`` (the checkers), ``app`` (validates rows
with ``build_instructions`` and scores with ``follow_list``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from resources_servers.instruction_following.instruction_base import Instruction
from resources_servers.instruction_following.lexical_checks import LEXICAL_INSTRUCTIONS
from resources_servers.instruction_following.structure_checks import STRUCTURE_INSTRUCTIONS

INSTRUCTIONS: dict[str, type[Instruction]] = {**LEXICAL_INSTRUCTIONS, **STRUCTURE_INSTRUCTIONS}
#: IFEval ids that are known but cannot be checked here, with the reason.
UNSUPPORTED: dict[str, str] = {
    "language:response_language": "needs a language detector (langdetect), not installed",
}


class InstructionError(ValueError):
    """A row names an unknown instruction id or gives it bad kwargs."""


def build_instruction(index: int, instruction_id: str, kwargs: Mapping[str, Any]) -> Instruction:
    """Validate one instruction's kwargs; null values are dropped first (as IFEval does).

    Raises:
        InstructionError: unknown or unsupported id, or kwargs that do not fit it; the message
            names the index, the id and the offending kwargs.
    """
    where = f"instruction {index} {instruction_id!r}"
    if instruction_id in UNSUPPORTED:
        raise InstructionError(f"{where} is not supported: {UNSUPPORTED[instruction_id]}")
    kind = INSTRUCTIONS.get(instruction_id)
    if kind is None:
        raise InstructionError(f"{where} is not a known instruction id")
    given = {key: value for key, value in kwargs.items() if value is not None}
    try:
        return kind.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'kwargs'}: {e['msg']}" for e in exc.errors()
        )
        raise InstructionError(f"{where} has bad kwargs: {problems}") from None


def build_instructions(
    instruction_ids: Sequence[str], kwargs: Sequence[Mapping[str, Any]]
) -> list[Instruction]:
    """Validate a row's instructions (``kwargs[i]`` belongs to ``instruction_ids[i]``).

    Raises:
        InstructionError: the lists differ in length, or any instruction is bad (all reported).
    """
    if len(kwargs) != len(instruction_ids):
        raise InstructionError(
            f"kwargs has {len(kwargs)} entries but instruction_id_list has {len(instruction_ids)}"
        )
    built: list[Instruction] = []
    problems: list[str] = []
    for index, (instruction_id, given) in enumerate(zip(instruction_ids, kwargs, strict=True)):
        try:
            built.append(build_instruction(index, instruction_id, given))
        except InstructionError as exc:
            problems.append(str(exc))
    if problems:
        raise InstructionError("; ".join(problems))
    return built


def loose_variants(text: str) -> list[str]:
    """IFEval's loose mode: the text without its first line, last line or both, and each of
    those with every ``*`` removed; an instruction is followed if any variant follows it."""
    lines = text.split("\n")
    trimmed = [text, "\n".join(lines[1:]), "\n".join(lines[:-1]), "\n".join(lines[1:-1])]
    return [*trimmed, *(t.replace("*", "") for t in trimmed)]


def follow_list(instructions: Sequence[Instruction], text: str, *, loose: bool) -> list[bool]:
    """Whether ``text`` follows each instruction (strictly, or in IFEval's loose mode).

    Empty text (after stripping) follows nothing, so an empty answer cannot earn reward by
    trivially meeting e.g. "less than 50 words" or "no commas".
    """
    if not text.strip():
        return [False] * len(instructions)
    variants = [v for v in loose_variants(text) if v.strip()] if loose else [text]
    return [any(i.check(v) for v in variants) for i in instructions]
