"""openai_model: a Responses API pass-through to OpenAI (or any endpoint serving ``/responses``).

Requests are forwarded to ``{openai_base_url}/responses`` with ``openai_api_key`` and the model
forced to ``openai_model``. Rate limits (429) and server errors (5xx) are retried with jittered
exponential backoff, honouring ``Retry-After``, at most ``max_attempts`` times; an upstream error
that remains is answered with its status and message so the agent can record it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Request
from pydantic import Field, SecretStr

from nemo_gym.authoring import (
    HttpResponse,
    JSONResponseBytes,
    RetryPolicy,
    UpstreamError,
    upstream_answer_error,
    upstream_failure,
    validated_json,
)
from nemo_gym.base_responses_api_model import (
    BaseResponsesAPIModelConfig,
    NeMoGymChatCompletionCreateParamsNonStreaming,
    SimpleResponsesAPIModel,
)
from nemo_gym.openai_utils import NeMoGymResponseCreateParamsNonStreaming

#: Fields Gym adds to create params that an OpenAI endpoint does not accept.
GYM_ONLY_FIELDS = ("return_token_id_information",)


class UpstreamRetrySettings(BaseResponsesAPIModelConfig):
    """How calls to the upstream API are bounded."""

    max_attempts: int = Field(default=8, ge=1, description="Attempts per call on 429/5xx.")
    request_timeout_s: float = Field(
        default=180.0,
        gt=0,
        description="Deadline of one attempt (a hung upstream fails the call, as a 504, after "
        "it); raise it for reasoning models that think for minutes.",
    )


class OpenAIModelConfig(UpstreamRetrySettings):
    openai_base_url: str = Field(description="Base URL, e.g. https://api.openai.com/v1.")
    openai_api_key: SecretStr = Field(description="API key sent as a Bearer token.")
    openai_model: str = Field(description="Model name sent upstream.")


class OpenAIModelServer(SimpleResponsesAPIModel):
    config: OpenAIModelConfig

    def _url(self, path: str) -> str:
        """The upstream URL of a Responses/Chat path (``/responses``, ``/chat/completions``)."""
        return self.config.openai_base_url.rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.openai_api_key.get_secret_value()}"}

    def _model(self) -> str:
        return self.config.openai_model

    async def _forward(self, path: str, payload: dict[str, Any]) -> HttpResponse:
        headers = self._headers()
        retry = RetryPolicy(
            max_attempts=self.config.max_attempts, backoff_base_s=0.5, backoff_max_s=60.0
        )
        try:
            resp = await self.server_client.http.request(
                "POST",
                self._url(path),
                json=payload,
                headers=headers,
                timeout_s=self.config.request_timeout_s,
                retry=retry,
            )
        except UpstreamError as exc:
            raise upstream_failure(exc, secrets=self._secrets()) from None
        if not resp.ok:
            raise upstream_answer_error(
                resp.status,
                resp.body,
                source=f"upstream {self._url(path)}",
                secrets=self._secrets(),
            )
        return resp

    def _secrets(self) -> set[str]:
        """What an upstream's words must not show (it may echo the key): they end up in rows.
        The credential headers' values, so that a subclass's own key (Azure's) is covered."""
        return {v.removeprefix("Bearer ") for v in self._headers().values()}

    async def responses(self, request: Request) -> Any:
        """Forward validated create params; the upstream's answer is passed back as it came
        (whoever calls this validates it: the agent does)."""
        body = await validated_json(request, NeMoGymResponseCreateParamsNonStreaming)
        payload = {k: v for k, v in body.items() if k not in GYM_ONLY_FIELDS}
        payload["model"] = self._model()
        resp = await self._forward("/responses", payload)
        return JSONResponseBytes(resp.body)

    async def chat_completions(
        self,
        body: NeMoGymChatCompletionCreateParamsNonStreaming = Body(),
    ) -> Any:
        payload = body.model_dump(mode="json", exclude_unset=True)
        payload["model"] = self._model()
        resp = await self._forward("/chat/completions", payload)
        return JSONResponseBytes(resp.body)


if __name__ == "__main__":
    OpenAIModelServer.run_webserver()
