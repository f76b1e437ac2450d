"""Helpers shared by the tests: servers in process or on loopback, subprocesses read line by line.

Every wait here is on a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiohttp import web

from nemo_gym.server.client import ServerClient
from nemo_gym.server.http_client import HttpClient
from nemo_gym.server.transport import AsgiTransport
from nemo_gym.supervisor.ports import reserve_port
from nemo_gym.testing.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: The weather tool as a Responses API function tool.
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def model_response(output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A minimal valid Responses API response with the given output items."""
    return {
        "id": "resp_test",
        "object": "response",
        "created_at": 0,
        "model": "m",
        "output": output or [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def assistant_message(text: str, n: int = 0) -> dict[str, Any]:
    """An assistant ``message`` output item with one ``output_text`` part."""
    return {
        "type": "message",
        "id": f"msg{n}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


class InProcess:
    """Gym servers that call each other in this process, with no socket.

    Each app added gets an address (``http://<name>.in-process:8000``) in :attr:`config`, as
    ``ng_run`` gives servers; :attr:`client` (a ``ServerClient`` on an ``AsgiTransport``)
    calls them by name, and :meth:`http` is an httpx client that reaches them too.
    """

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.transport = AsgiTransport({})
        self.client = ServerClient(self.config, HttpClient(transport=self.transport))

    def add(self, name: str, kind: str, app: Any) -> str:
        """Serve ``app`` as the instance ``name`` of server type ``kind``; return its URL."""
        url = f"http://{name}.in-process:8000"
        self.transport.apps[url.removeprefix("http://")] = app
        self.config[name] = instance_entry(kind, "impl", url)
        return url

    def http(self) -> httpx.AsyncClient:
        """An httpx client (with a cookie jar) for the apps added so far."""
        mounts = {
            f"http://{address}": httpx.ASGITransport(app=app)
            for address, app in self.transport.apps.items()
        }
        return httpx.AsyncClient(mounts=mounts)


def asgi_client(server: Any, base_url: str = "http://server") -> httpx.AsyncClient:
    """An httpx client that calls a Gym server's app in-process (no socket)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.setup_webserver()), base_url=base_url
    )


def history_after(
    question: str, response: dict[str, Any], tool_output: str
) -> list[dict[str, Any]]:
    """The next turn's input: the question, the response's items, an output for each call."""
    calls = [i for i in response["output"] if i["type"] == "function_call"]
    return [
        {"role": "user", "content": question},
        *response["output"],
        *(
            {"type": "function_call_output", "call_id": c["call_id"], "output": tool_output}
            for c in calls
        ),
    ]


WEATHER_CONFIGS = (
    "resources_servers/example_single_tool_call/configs/example_single_tool_call.yaml,"
    "responses_api_models/openai_model/configs/openai_model.yaml"
)


def instance_entry(kind: str, impl: str, url: str) -> dict[str, Any]:
    """A config section ``{kind: {impl: {host, port, entrypoint}}}`` for a server at ``url``."""
    host, port = url.removeprefix("http://").split(":")
    return {kind: {impl: {"host": host, "port": int(port), "entrypoint": "app.py"}}}


#: Ports held for the running test by :func:`free_port`; ``conftest`` releases them after it.
_RESERVED: list[socket.socket] = []


def free_port() -> int:
    """A free loopback port, held for this test until it ends (``conftest.release_ports``).

    The port stays bound (not listening) by ``supervisor.ports.reserve_port``, the helper of
    ``ng_run``'s own binding, so no other process or test gets it, while ``ng_run``, uvicorn or
    aiohttp given the number can still listen on it: there is no window between choosing the
    port and binding it.
    """
    sock = reserve_port("127.0.0.1")
    _RESERVED.append(sock)
    return int(sock.getsockname()[1])


def release_ports() -> None:
    """Close the reservations of :func:`free_port`."""
    while _RESERVED:
        _RESERVED.pop().close()


atexit.register(release_ports)  # tests outside tests/ (no conftest there) reserve ports too


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A subprocess whose merged stdout/stderr is collected line by line in a thread."""

    def __init__(
        self, args: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO
    ) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.popen.stdout:  # closed at EOF: the process has ended its output
            for line in self.popen.stdout:
                self.lines.append(line.rstrip("\n"))
        self._queue.put(None)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, needle: str, timeout: float = 60.0) -> str:
        """Wait until a line containing ``needle`` is printed (fails if the process exits)."""

        def found() -> str | None:
            for line in self.lines:
                if needle in line:
                    return line
            if self.popen.poll() is not None and not self._thread.is_alive():
                raise AssertionError(
                    f"process exited ({self.popen.returncode}) before printing "
                    f"{needle!r}; output:\n{self.text}"
                )
            return None

        return str(wait_for(found, timeout, f"{needle!r} in output:\n{self.text}"))

    def wait(self, timeout: float = 60.0) -> int:
        code = self.popen.wait(timeout)
        self._thread.join(timeout)
        return code

    def interrupt(self) -> None:
        self.popen.send_signal(signal.SIGINT)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(40)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._thread.join(10)


@contextmanager
def fake_openai_process(*extra: str) -> Iterator[str]:
    """Run the fake OpenAI endpoint as a process; yield its ``/v1`` base URL."""
    proc = Proc([sys.executable, "-m", "nemo_gym.testing.fake_openai", "--port", "0", *extra])
    try:
        line = proc.wait_line("listening on", timeout=30)
        yield line.split("listening on ", 1)[1].strip() + "/v1"
    finally:
        proc.popen.kill()
        proc.wait(10)


def ng_run(
    head_port: int,
    base_url: str,
    *extra: str,
    configs: str = WEATHER_CONFIGS,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start the real ``ng_run`` on the weather environment against ``base_url``."""
    return Proc(
        [
            str(BIN / "ng_run"),
            f"+config_paths=[{configs}]",
            f"+head_server.port={head_port}",
            f"+policy_base_url={base_url}",
            "+policy_api_key=sk-test-SECRET-4242",
            "+policy_model_name=fake-model",
            "+graceful_shutdown_s=5",
            *extra,
        ],
        env=env,
    )


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in the running loop on a free port; yield its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@asynccontextmanager
async def serve_fake_openai(**kwargs: Any) -> AsyncIterator[tuple[str, FakeOpenAI]]:
    """Serve the fake OpenAI endpoint in the running loop; yield (``/v1`` URL, its state)."""
    fake = FakeOpenAI(**kwargs)
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", fake
    finally:
        await runner.cleanup()
