"""vllm_model: the Responses API in front of any OpenAI-compatible Chat Completions server.

For vLLM, SGLang, llama.cpp's server or Gym's own ``local_model``: Responses requests become
Chat Completions (``nemo_gym.protocol.chat_conversion``) and the answer comes back as Responses
items: reasoning (``reasoning_content`` or ``<think>`` spans), text, function calls.

* Several ``base_url``s: each new session (one rollout) goes to the upstream with the fewest
  requests in flight, and stays there, so its growing prompt hits that server's prefix cache.
* Training mode (``return_token_id_information``): the upstream is asked for token ids and
  log-probabilities; the turn's last output item carries ``prompt_token_ids``,
  ``generation_token_ids`` and ``generation_log_probs``; items sent back on the next turn carry
  them to the upstream again. A prompt that does not start with the previous turn's exact
  tokens is flagged on the response as ``token_drift`` (never silently accepted).
* An upstream "context length" error becomes an ``incomplete`` response, not a crash.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import HTTPException, RequestValidationError
from pydantic import Field, PrivateAttr, SecretStr

from nemo_gym.authoring import (
    SESSION_ID_KEY,
    ConversionError,
    HttpResponse,
    JSONResponseBytes,
    RetryPolicy,
    SessionStore,
    UpstreamError,
    chat_to_response,
    responses_to_chat_request,
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
from responses_api_models.vllm_model.tokens import drift, previous_turn_tokens, sampled_tokens

_CONTEXT_ERROR = re.compile(
    r"context length|maximum context|max_tokens|too long|"
    r"context window|prompt is too long",
    re.IGNORECASE,
)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


class VLLMModelConfig(BaseResponsesAPIModelConfig):
    base_url: str | list[str] = Field(description="Chat Completions base URL(s), ending in /v1.")
    api_key: SecretStr = Field(default=SecretStr("EMPTY"))
    model: str
    return_token_id_information: bool = Field(
        default=False,
        description=("Ask for token ids and log-probabilities and put them on the output items."),
    )
    uses_reasoning_parser: bool = Field(
        default=False,
        description=(
            "The upstream splits reasoning into reasoning_content: send earlier <think> text "
            "that way."
        ),
    )
    replace_developer_role_with_system: bool = False
    max_attempts: int = Field(default=4, ge=1)
    request_timeout_s: float = Field(default=900.0, gt=0)


class VLLMModelServer(SimpleResponsesAPIModel):
    config: VLLMModelConfig
    _sessions: SessionStore[int] = PrivateAttr()  # session id -> upstream index
    _in_flight: list[int] = PrivateAttr(default_factory=list)
    _assigned: list[int] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any) -> None:
        self._in_flight = [0] * len(self.base_urls)
        self._assigned = [0] * len(self.base_urls)
        self._sessions = SessionStore(
            ttl_s=self.config.session_ttl_s,
            max_entries=self.config.max_sessions,
            name=f"{self.config.name or 'vllm_model'}.upstream_of_session",
            on_evict=self._forget_session,
        )

    def _forget_session(self, session: str, index: int, reason: str) -> None:
        self._assigned[index] -= 1

    @property
    def base_urls(self) -> list[str]:
        urls = self.config.base_url
        return [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]

    def upstream_for(self, session: str) -> int:
        """The upstream index of a session: sticky; a new session goes to the upstream with
        the fewest requests in flight, then the fewest sessions."""
        index = self._sessions.get(session)
        if index is None:
            index = min(
                range(len(self._in_flight)), key=lambda i: (self._in_flight[i], self._assigned[i])
            )
            self._assigned[index] += 1
            self._sessions.set(session, index)
        return index

    async def _post(self, index: int, path: str, payload: dict[str, Any]) -> HttpResponse:
        headers = {"Authorization": f"Bearer {self.config.api_key.get_secret_value()}"}
        self._in_flight[index] += 1
        try:
            return await self.server_client.http.request(
                "POST",
                self.base_urls[index] + path,
                json=payload,
                headers=headers,
                timeout_s=self.config.request_timeout_s,
                retry=RetryPolicy(max_attempts=self.config.max_attempts, backoff_base_s=0.5),
            )
        except UpstreamError as exc:
            raise upstream_failure(exc, secrets=self._secrets()) from None
        finally:
            self._in_flight[index] -= 1

    def _secrets(self) -> set[str]:
        """What an upstream's error must not show: the key (it may echo it into rows)."""
        return {self.config.api_key.get_secret_value()}

    def _answer_error(self, index: int, resp: HttpResponse) -> HTTPException:
        source = f"upstream {self.base_urls[index]}/chat/completions"
        return upstream_answer_error(resp.status, resp.body, source=source, secrets=self._secrets())

    def _prepare(self, chat: dict[str, Any], training: bool) -> dict[str, Any]:
        chat["model"] = self.config.model
        for message in chat["messages"]:
            if self.config.replace_developer_role_with_system and message["role"] == "developer":
                message["role"] = "system"
            content = message.get("content")
            if (
                self.config.uses_reasoning_parser
                and message["role"] == "assistant"
                and isinstance(content, str)
                and "<think>" in content
            ):
                message["reasoning_content"] = "\n".join(_THINK.findall(content))
                message["content"] = _THINK.sub("", content) or None
        if training:
            chat.update(logprobs=True, return_tokens_as_token_ids=True, return_token_ids=True)
        return chat

    async def _prompt_token_ids(
        self, index: int, chat: dict[str, Any], completion: dict[str, Any]
    ) -> list[int]:
        ids = completion.get("prompt_token_ids")
        if ids is not None:
            return [int(i) for i in ids]
        # Older vLLM: ask its /tokenize endpoint (beside /v1) for the same messages and tools.
        root = self.base_urls[index].removesuffix("/v1")
        payload = {k: chat[k] for k in ("model", "messages", "tools") if k in chat}
        resp = await self.server_client.http.request(
            "POST", root + "/tokenize", json=payload, timeout_s=60
        )
        if not resp.ok:
            raise HTTPException(
                status_code=502,
                detail=(
                    f"the upstream returned no prompt_token_ids and {root}/tokenize answered "
                    f"HTTP {resp.status}"
                ),
            )
        return [int(i) for i in resp.json_sync().get("tokens", [])]

    async def responses(self, request: Request) -> Any:
        params = await validated_json(request, NeMoGymResponseCreateParamsNonStreaming)
        training = bool(
            self.config.return_token_id_information or params.get("return_token_id_information")
        )
        try:
            chat = self._prepare(responses_to_chat_request(params), training)
        except ConversionError as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": str(exc), "type": "value_error"}]
            ) from None
        index = self.upstream_for(request.session[SESSION_ID_KEY])
        resp = await self._post(index, "/chat/completions", chat)
        if resp.status == 400 and _CONTEXT_ERROR.search(resp.body.decode(errors="replace")):
            truncated = chat_to_response(
                {
                    "choices": [
                        {
                            "message": {"role": "assistant", "content": None},
                            "finish_reason": "length",
                        }
                    ]
                },
                params,
                self.config.model,
            )
            truncated["incomplete_details"] = {
                "reason": "max_output_tokens",
                "detail": f"upstream: {resp.body[:500].decode(errors='replace')}",
            }
            return JSONResponseBytes(_dumps(truncated))
        if not resp.ok:
            raise self._answer_error(index, resp)
        completion = resp.json_sync()
        tokens = None
        token_drift = None
        if training:
            choice = (completion.get("choices") or [{}])[0]
            sampled = sampled_tokens(choice)
            if sampled is None:
                raise HTTPException(
                    status_code=502,
                    detail=(
                        "training mode: the upstream returned no token ids/logprobs; run vLLM with "
                        "return_tokens_as_token_ids support (or return_token_ids)"
                    ),
                )
            prompt_ids = await self._prompt_token_ids(index, chat, completion)
            tokens = {
                "prompt_token_ids": prompt_ids,
                "generation_token_ids": sampled[0],
                "generation_log_probs": sampled[1],
            }
            token_drift = drift(previous_turn_tokens(chat["messages"]), prompt_ids)
        response = chat_to_response(completion, params, self.config.model, tokens)
        if token_drift is not None:
            response["token_drift"] = token_drift
        return JSONResponseBytes(_dumps(response))

    async def chat_completions(self, request: Request) -> Any:
        body = await validated_json(request, NeMoGymChatCompletionCreateParamsNonStreaming)
        body["model"] = self.config.model
        index = self.upstream_for(request.session[SESSION_ID_KEY])
        resp = await self._post(index, "/chat/completions", body)
        if not resp.ok:
            raise self._answer_error(index, resp)
        return JSONResponseBytes(resp.body)


def _dumps(data: Any) -> bytes:
    import orjson

    return orjson.dumps(data)


if __name__ == "__main__":
    VLLMModelServer.run_webserver()
