"""math_with_judge: reward a math answer by symbolic equivalence, with an optional LLM judge.

``/verify`` takes the final text of the response (``extraction``), extracts the answer, checks
it against ``expected_answer`` with math-verify in a worker process (``library``) and, only when
that check does not find them equal and ``should_use_judge`` is on, asks the judge model
(``judge``). No tools. A judge that fails makes ``/verify`` answer HTTP 502 (``JudgeError``);
math-verify undecided (timeout, exception, unparseable ``expected_answer``) with no judge to ask,
or a dead math-verify worker, HTTP 500 (``LibraryError``). The agent records those rows as
``verifier_error``, never as reward 0.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from fastapi import FastAPI, Request
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator
from starlette.responses import Response

from nemo_gym.authoring import (
    NeMoGymResponseCreateParamsNonStreaming,
    OffloadError,
    error_body,
    final_answer_text,
    offload,
    ray_address,
)
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.config_types import ServerRef
from resources_servers.math_with_judge.extraction import extract_answer
from resources_servers.math_with_judge.judge import JudgeError, JudgeEvaluation, judge_equivalence
from resources_servers.math_with_judge.library import (
    CheckFn,
    LibraryChecker,
    LibraryError,
    LibraryVerdict,
    check_equivalence,
)

logger = logging.getLogger(__name__)


class MathWithJudgeConfig(BaseResourcesServerConfig):
    should_use_judge: bool = False
    """Ask the judge when math-verify does not find the answer equal."""
    judge_model_server: ServerRef | None = None
    """The judge model instance, e.g. ``{type: responses_api_models, name: policy_model}``."""
    judge_responses_create_params: NeMoGymResponseCreateParamsNonStreaming = Field(
        default_factory=lambda: NeMoGymResponseCreateParamsNonStreaming(input=[])
    )
    """Base create params of the judge calls; ``input`` is replaced by the judge prompt."""
    judge_timeout_s: float = Field(default=120.0, gt=0)
    """Deadline of one judge call."""
    library_timeout_s: float = Field(default=10.0, gt=0)
    """Deadline of math-verify's parsing and comparison of one answer (in the worker)."""
    library_hard_timeout_s: float = Field(default=60.0, gt=0)
    """After this long a worker that has not answered is killed (includes a cold start)."""
    library_workers: int = Field(default=2, ge=1)
    """math-verify worker processes at most."""
    verify_on_ray: bool = False
    """Run math-verify as Ray tasks on the cluster (``ray_head_node_address``), not locally."""

    @model_validator(mode="after")
    def _judge_has_a_server(self) -> MathWithJudgeConfig:
        if self.should_use_judge and self.judge_model_server is None:
            raise ValueError(
                "judge_model_server: required when should_use_judge is true, e.g. "
                "{type: responses_api_models, name: policy_model}"
            )
        if self.judge_model_server and self.judge_model_server.type != "responses_api_models":
            raise ValueError("judge_model_server.type: must be responses_api_models")
        return self


class MathVerifyRequest(BaseVerifyRequest):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    expected_answer: str
    """The gold answer, as LaTeX without ``\\boxed`` (numbers are accepted too)."""
    question: str | None = None
    """The problem, shown to the judge; defaults to the last user message of the prompt."""

    @field_validator("expected_answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected_answer must not be empty")
        return value.strip()


class MathVerifyResponse(MathVerifyRequest, BaseVerifyResponse):
    extracted_answer: str | None
    library_reward: float
    library_error: str | None
    judge_evaluations: list[JudgeEvaluation] | None


class MathWithJudgeServer(SimpleResourcesServer):
    config: MathWithJudgeConfig

    #: The function run in the math-verify workers (tests substitute misbehaving ones).
    library_fn: ClassVar[CheckFn] = staticmethod(check_equivalence)
    _library: LibraryChecker | None = PrivateAttr(default=None)

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.add_exception_handler(JudgeError, self._on_judge_error)
        return app

    async def _on_judge_error(self, request: Request, exc: Exception) -> Response:
        logger.warning("judge failure in %s: %s", self.config.name, exc)
        body = error_body("JudgeError", str(exc), self.config.name)
        return Response(body, status_code=502, media_type="application/json")

    @property
    def library(self) -> LibraryChecker:
        if self._library is None:
            self._library = LibraryChecker(
                workers=self.config.library_workers,
                timeout_s=self.config.library_timeout_s,
                hard_timeout_s=self.config.library_hard_timeout_s,
                fn=type(self).library_fn,
            )
        return self._library

    async def _check(self, expected: str, answer: str) -> LibraryVerdict:
        """math-verify in the local workers, or as a Ray task when ``verify_on_ray``."""
        cfg = self.config
        try:
            return await offload(
                type(self).library_fn,
                expected,
                answer,
                cfg.library_timeout_s,
                on_ray=cfg.verify_on_ray,
                local=lambda: self.library.check(expected, answer),
                timeout_s=cfg.library_hard_timeout_s,
                address=ray_address(self.server_client.global_config_dict),
            )
        except TimeoutError:
            return LibraryVerdict(
                False,
                f"timeout: math-verify Ray task cancelled after {cfg.library_hard_timeout_s:g}s",
            )
        except OffloadError as exc:
            raise LibraryError(str(exc)) from exc

    async def verify(self, body: MathVerifyRequest) -> MathVerifyResponse:
        text = final_answer_text(body.response, scope="all")
        extracted = extract_answer(text)
        verdict = LibraryVerdict(False)
        if extracted is not None:
            verdict = await self._check(body.expected_answer, extracted)
        library_reward = float(verdict.equal)
        reward, evaluations = library_reward, None
        judge = self.config.judge_model_server
        if not verdict.equal and self.config.should_use_judge and judge and text.strip():
            reward, evaluations = await judge_equivalence(
                self.server_client,
                judge.name,
                self.config.judge_responses_create_params,
                question=body.question or _last_user_text(body.responses_create_params),
                expected_answer=body.expected_answer,
                generated_answer=extracted if extracted is not None else text,
                timeout_s=self.config.judge_timeout_s,
            )
        if verdict.error is not None and evaluations is None:
            # Undecided is not "wrong": the row fails as a verifier error, with the reason.
            raise LibraryError(
                f"math-verify could not decide ({verdict.error}) and the judge was not asked "
                "(should_use_judge is off); the row is not scored"
            )
        return MathVerifyResponse(
            **body.model_dump(),
            reward=reward,
            extracted_answer=extracted,
            library_reward=library_reward,
            library_error=verdict.error,
            judge_evaluations=evaluations,
        )


def _last_user_text(params: NeMoGymResponseCreateParamsNonStreaming) -> str:
    """The text of the prompt's last user message (the problem, when no question is given)."""
    if isinstance(params.input, str):
        return params.input
    for item in reversed(params.input):
        if getattr(item, "role", None) != "user":
            continue
        content = getattr(item, "content", "")
        if isinstance(content, str):
            return content
        return "\n".join(str(getattr(p, "text", "")) for p in content)
    return ""


if __name__ == "__main__":
    MathWithJudgeServer.run_webserver()
