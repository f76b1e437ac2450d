"""Wire models of a resources server: ``/seed_session``, ``/verify`` and the ``/run`` row.

Rows carry ``responses_create_params`` plus whatever fields the verifier needs; subclasses of
these models declare those fields. Unknown row fields are ignored on the way in.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from nemo_gym.protocol.responses import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming


class BaseRunRequest(BaseModel):
    """One dataset row: the task as Responses API create params (plus subclass fields)."""

    responses_create_params: NeMoGymResponseCreateParamsNonStreaming

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """``BaseModel.model_dump``, by alias unless told otherwise: OpenAI's types inside
        validate only by alias (``text.format.schema``, dumped by name as ``schema_``), and a
        verifier builds its answer from ``**body.model_dump()``."""
        kwargs.setdefault("by_alias", True)
        return super().model_dump(**kwargs)


class BaseVerifyRequest(BaseRunRequest):
    """A row and the model's whole response, sent to ``/verify``."""

    response: NeMoGymResponse


class BaseVerifyResponse(BaseVerifyRequest):
    """What ``/verify`` answers: the request echoed with a ``reward`` (plus subclass fields)."""

    reward: float


class BaseSeedSessionRequest(BaseModel):
    """The row sent to ``/seed_session`` before a rollout starts (subclasses pick fields)."""

    model_config = ConfigDict(extra="ignore")


class BaseSeedSessionResponse(BaseModel):
    """What ``/seed_session`` answers (empty by default)."""
