"""A fake OpenAI-compatible endpoint: scripted, for tests and the benchmark.

It stands in for a *remote* API we cannot reach from tests (OpenAI); it never stands in for a
part of Gym. ``POST /v1/responses`` and ``POST /v1/chat/completions`` answer like a model that
calls the first offered tool once with a ``city`` found in the user's text, then answers in
text using the tool's output. Markers in the last user message script failures:

* ``FAKE_HTTP_<code>``: answer with that status (e.g. ``FAKE_HTTP_500``).
* ``FAKE_SLEEP_<seconds>``: wait before answering.
* ``FAKE_LOOP``: call the tool on every turn (never finish).
* ``FAKE_BAD_ARGS``: call the tool with arguments that are not JSON.
* ``FAKE_UNKNOWN_TOOL``: call a tool that was not offered.
* ``FAKE_TRUNCATE``: answer ``status: incomplete`` (max_output_tokens).

``--fail-first N --fail-status 429`` answers the first N requests with that status (and a
``Retry-After: 0``), and ``--fail-rate 0.25`` a quarter of all requests at random (``--seed``),
for retry tests and the fault benchmark. ``--storm-after N --storm-s S`` answers every request
with that status for S seconds from the N-th request on (a rate-limit storm mid-run);
``--hang`` accepts every request and never answers (a hung upstream); ``--latency-s 2`` answers
every model request after 2 s, as a real model would (the scale benchmark). ``GET /fake/stats``
reports request counts, the failures answered, and the ``Authorization`` headers seen (Azure's
``api-key`` too, with the query string). Calls held without an answer, counted, and bodies
cut mid-way: ``--hang-first N``, ``--cut-first N`` and ``POST /fake/faults``
(``connection_faults``). The Azure OpenAI paths (``/openai/responses``,
``/openai/deployments/<d>/chat/completions``) are served the same way. Run:
``python -m nemo_gym.testing.fake_openai --port 0``; it prints
``listening on http://127.0.0.1:<port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import sys
import time
from typing import Any

import orjson
from aiohttp import web

from nemo_gym.testing import connection_faults

CITIES = ("San Francisco", "New York", "Paris", "Tokyo", "Berlin", "Sydney", "Toronto", "London")
_ids = itertools.count()


def _city(text: str) -> str:
    low = text.lower()
    for city in CITIES:
        if city.lower() in low:
            return city
    return "San Francisco"


def _last_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content)
    return ""


def _decide(items: list[dict[str, Any]], tools: list[str]) -> tuple[str, Any]:
    """Return ("call", (name, arguments)) or ("text", text) or ("truncate", "")."""
    user = _last_user_text(items)
    last = items[-1] if items else {}
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    if "FAKE_TRUNCATE" in user:
        return "truncate", ""
    if tools and ("FAKE_LOOP" in user or last.get("type") != "function_call_output"):
        if "FAKE_BAD_ARGS" in user:
            return "call", (tools[0], '{"city": ')
        if "FAKE_UNKNOWN_TOOL" in user:
            return "call", ("no_such_tool", "{}")
        return "call", (tools[0], orjson.dumps({"city": _city(user)}).decode())
    if outputs:
        return "text", f"Here is what I found: {outputs[-1].get('output')}"
    return "text", f"You said: {user}"


class FakeOpenAI:
    """The fake endpoint's state (counts, scripted failures)."""

    def __init__(
        self,
        fail_first: int = 0,
        fail_status: int = 429,
        fail_rate: float = 0.0,
        seed: int = 0,
        retry_after: str = "0",
        storm_after: int = 0,
        storm_s: float = 0.0,
        hang: bool = False,
        latency_s: float = 0.0,
    ) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.fail_rate = fail_rate  # share of requests answered fail_status at random
        self.retry_after = retry_after
        self.latency_s = latency_s  # every model request waits this long before its answer
        self._rng = random.Random(seed)
        self.storm_after = storm_after  # the request that starts the storm (0: no storm)
        self.storm_s = storm_s
        self.storm_started: float | None = None
        self.hang = hang
        self.requests = 0
        self.failed = 0  # requests answered fail_status
        self.auth: list[str] = []
        self.faults = connection_faults.ConnectionFaults()

    def _in_storm(self) -> bool:
        if not self.storm_after or self.requests < self.storm_after:
            return False
        if self.storm_started is None:
            self.storm_started = time.monotonic()
        return time.monotonic() - self.storm_started < self.storm_s

    async def _preamble(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        self.requests += 1
        auth = request.headers.get("Authorization", "")
        if "api-key" in request.headers:  # Azure OpenAI
            auth = f"api-key {request.headers['api-key']} {request.query_string}"
        if len(self.auth) < 100:
            self.auth.append(auth)
        if self.hang:
            await asyncio.Event().wait()  # until the client goes away (the handler is cancelled)
        if (
            self.requests <= self.fail_first
            or self._in_storm()
            or (self.fail_rate and self._rng.random() < self.fail_rate)
        ):
            self.failed += 1
            return None, web.json_response(
                {"error": {"message": "scripted failure"}},
                status=self.fail_status,
                headers={"Retry-After": self.retry_after},
            )
        body = orjson.loads(await request.read())
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        return body, None

    async def _scripted(self, text: str) -> web.Response | None:
        if m := re.search(r"FAKE_SLEEP_([0-9.]+)", text):
            await asyncio.sleep(float(m.group(1)))
        if m := re.search(r"FAKE_HTTP_(\d{3})", text):
            return web.json_response(
                {"error": {"message": f"scripted HTTP {m.group(1)}"}}, status=int(m.group(1))
            )
        return None

    async def responses(self, request: web.Request) -> web.Response:
        body, early = await self._preamble(request)
        if early is not None:
            return early
        assert body is not None
        raw_input = body.get("input")
        items: list[dict[str, Any]] = (
            [{"role": "user", "content": raw_input}]
            if isinstance(raw_input, str)
            else list(raw_input or [])
        )
        if (scripted := await self._scripted(_last_user_text(items))) is not None:
            return scripted
        tools = [t["name"] for t in body.get("tools") or [] if t.get("type") == "function"]
        kind, value = _decide(items, tools)
        n = next(_ids)
        status = "completed"
        if kind == "call":
            output = [
                {
                    "type": "function_call",
                    "id": f"fc_{n}",
                    "call_id": f"call_{n}",
                    "name": value[0],
                    "arguments": value[1],
                    "status": "completed",
                }
            ]
        else:
            text = "Partial answer" if kind == "truncate" else value
            status = "incomplete" if kind == "truncate" else "completed"
            output = [
                {
                    "type": "message",
                    "id": f"msg_{n}",
                    "role": "assistant",
                    "status": status,
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
        resp = {
            "id": f"resp_{n}",
            "object": "response",
            "created_at": time.time(),
            "model": body.get("model") or "fake",
            "status": status,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "total_tokens": 15,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        if kind == "truncate":
            resp["incomplete_details"] = {"reason": "max_output_tokens"}
        return web.Response(body=orjson.dumps(resp), content_type="application/json")

    async def chat_completions(self, request: web.Request) -> web.Response:
        body, early = await self._preamble(request)
        if early is not None:
            return early
        assert body is not None
        messages = body.get("messages") or []
        text = _last_user_text(messages)
        if (scripted := await self._scripted(text)) is not None:
            return scripted
        n = next(_ids)
        resp = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "fake",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"You said: {text}"},
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        return web.Response(body=orjson.dumps(resp), content_type="application/json")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.requests,
                "failed": self.failed,
                "auth": self.auth,
                **self.faults.stats(),
            }
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/openai/responses", self.responses)  # Azure OpenAI's paths
        app.router.add_post("/openai/deployments/{name}/chat/completions", self.chat_completions)
        app.router.add_get("/fake/stats", self.stats)
        self.faults.install(app)
        return app


async def _serve(host: str, port: int, fake: FakeOpenAI) -> None:
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1]
    sys.stdout.write(f"listening on http://{host}:{bound}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Run the fake endpoint until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=429)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share failed at random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storm-after", type=int, default=0, help="request starting a storm")
    parser.add_argument("--storm-s", type=float, default=0.0, help="storm length in seconds")
    parser.add_argument("--hang", action="store_true", help="never answer")
    parser.add_argument(
        "--latency-s", type=float, default=0.0, help="wait before every model answer"
    )
    connection_faults.add_options(parser)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    fake = FakeOpenAI(
        args.fail_first,
        args.fail_status,
        args.fail_rate,
        args.seed,
        storm_after=args.storm_after,
        storm_s=args.storm_s,
        hang=args.hang,
        latency_s=args.latency_s,
    )
    fake.faults = connection_faults.from_options(args)
    try:
        asyncio.run(_serve(args.host, args.port, fake))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
