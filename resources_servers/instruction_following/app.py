"""instruction_following: IFEval-style verifiable instructions on the model's final answer.

Each row lists IFEval instruction ids with their kwargs; ``/verify`` checks the final assistant
text against every instruction (checkers in ``lexical_checks``/``structure_checks``, registry in
``instructions``) and pays 1.0 only when all are followed. No tools.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, PrivateAttr, model_validator

from nemo_gym.authoring import BaseRunRequest, final_answer_text
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from resources_servers.instruction_following.instruction_base import Instruction
from resources_servers.instruction_following.instructions import (
    InstructionError,
    build_instructions,
    follow_list,
)


class InstructionFollowingConfig(BaseResourcesServerConfig):
    loose: bool = False
    """Score in IFEval's loose mode (first/last line and ``*`` may be dropped), not strict."""


class InstructionRow(BaseRunRequest):
    """A task: the prompt and its instructions, ``kwargs[i]`` belonging to
    ``instruction_id_list[i]``. Unknown ids and bad kwargs fail validation (HTTP 422)."""

    id: int | str | None = None
    prompt: str
    instruction_id_list: list[str] = Field(min_length=1)
    kwargs: list[dict[str, Any]]
    _instructions: list[Instruction] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _instructions_are_checkable(self) -> Self:
        try:
            self._instructions = build_instructions(self.instruction_id_list, self.kwargs)
        except InstructionError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def instructions(self) -> list[Instruction]:
        """The validated instructions, in ``instruction_id_list`` order."""
        return self._instructions


class InstructionFollowingVerifyRequest(InstructionRow, BaseVerifyRequest):
    pass


class InstructionFollowingVerifyResponse(InstructionFollowingVerifyRequest, BaseVerifyResponse):
    follow_instruction_list: list[bool]
    fraction_followed: float
    follow_all_instructions: bool


class InstructionFollowingServer(SimpleResourcesServer):
    config: InstructionFollowingConfig

    async def verify(
        self, body: InstructionFollowingVerifyRequest
    ) -> InstructionFollowingVerifyResponse:
        text = final_answer_text(body.response, scope="trailing")
        followed = follow_list(body.instructions, text, loose=self.config.loose)
        every = all(followed)
        return InstructionFollowingVerifyResponse(
            **body.model_dump(),
            reward=float(every),
            follow_instruction_list=followed,
            fraction_followed=sum(followed) / len(followed),
            follow_all_instructions=every,
        )


if __name__ == "__main__":
    InstructionFollowingServer.run_webserver()
