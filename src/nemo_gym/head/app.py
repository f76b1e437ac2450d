"""The head server: discovery and status for one ``ng_run``.

Routes: ``GET /server_instances`` (every server ``ng_run`` started: name, type, implementation,
host, port, url, pid, status from its ``/health``, uptime), ``GET /global_config_dict_yaml``
(the merged config with every secret redacted), ``GET /health``. It never holds a secret: ``ng_run``
gives it the redacted config only. It probes the servers with the pooled client
(``nemo_gym.server.http_client``), like every Gym process.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.base import create_app
from nemo_gym.server.http_client import NO_RETRY, HttpClient
from nemo_gym.server.launch import LaunchContext, configure_process_logging, serve


class ServerInstanceInfo(BaseModel):
    """One row of ``GET /server_instances``."""

    name: str
    process_name: str
    server_type: str
    implementation: str
    host: str
    port: int
    url: str
    pid: int | None
    config_path: str | None = None
    start_time: float
    status: str | None = None
    uptime_seconds: float | None = None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def create_head_app(
    redacted_config: dict[str, Any],
    instances: list[dict[str, Any]],
    http: HttpClient | None = None,
) -> FastAPI:
    """Build the head server's app from the redacted config and the instance table.

    ``http`` probes the servers' ``/health`` (by default a pooled client with a 2 s deadline).
    """
    config_yaml = yaml.safe_dump(redacted_config, sort_keys=False)
    rows = [ServerInstanceInfo(**row) for row in instances]
    http = http or HttpClient(timeout_s=2.0)
    app = create_app("head_server", role="head_server", on_shutdown=http.close, sessions=False)

    async def probe(row: ServerInstanceInfo) -> ServerInstanceInfo:
        status = "exited"
        if _alive(row.pid):
            try:
                resp = await http.request("GET", f"{row.url}/health", retry=NO_RETRY)
                status = "healthy" if resp.status == 200 else f"unhealthy (HTTP {resp.status})"
            except UpstreamError:
                status = "unreachable"
        uptime = round(time.time() - row.start_time, 1) if status != "exited" else None
        return row.model_copy(update={"status": status, "uptime_seconds": uptime})

    @app.get("/server_instances")
    async def server_instances() -> list[ServerInstanceInfo]:
        return list(await asyncio.gather(*(probe(row) for row in rows)))

    @app.get("/global_config_dict_yaml", response_class=PlainTextResponse)
    async def global_config_dict_yaml() -> str:
        return config_yaml

    return app


def run_head_server(context: LaunchContext) -> None:
    """Serve the head server in this process (started by ``ng_run``)."""
    configure_process_logging()
    head = context.config["head_server"]
    app = create_head_app(context.extra["redacted_config"], context.extra["instances"])
    serve(
        app, host=head["host"], port=int(head["port"]), sock=context.sock, graceful_shutdown_s=2.0
    )
