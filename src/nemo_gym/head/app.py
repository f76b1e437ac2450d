"""The head server: discovery and status for one ``ng_run``.

Routes: ``GET /server_instances`` (every server ``ng_run`` started: name, type, implementation,
host, port, url, pid, status from its ``/health``, uptime), ``GET /global_config_dict_yaml``
(the merged config with every secret redacted), ``GET /health``. It never holds a secret: ``ng_run``
gives it the redacted config only. It probes the servers with the pooled client
(``nemo_gym.server.http_client``), like every Gym process. Replicas of an instance placed on a Ray
cluster register with ``POST /replicas`` (again after a restart: the newest registration of a
replica wins); ``GET /replicas?instance=...`` lists them for ``server.replicas``, and
``/server_instances`` shows one row per replica, with its node, instead of the instance's
placement process; while fewer replicas than ``num_replicas`` have registered (start-up), the
placement process's row is shown too, and its ``/health`` answers 503 until every replica is
up, so the table does not read all healthy before ``ng_run`` does.
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

from nemo_gym.config.instances import instance_section
from nemo_gym.config.placement import is_placed, placement_of
from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.base import create_app
from nemo_gym.server.http_client import NO_RETRY, HttpClient
from nemo_gym.server.launch import LaunchContext, configure_process_logging, serve
from nemo_gym.server.replicas import ReplicaInfo


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
    replica: int | None = None
    node_id: str | None = None
    node_ip: str | None = None


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


def _replicas_wanted(config: dict[str, Any], name: str) -> int:
    """``num_replicas`` of a placed instance; 0 for one that runs as ng_run's own process."""
    section = instance_section(config, name) if is_placed(config, name) else None
    placement = placement_of(section[2]) if section is not None else None
    return placement.num_replicas if placement is not None else 0


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
    replicas: dict[tuple[str, int], ReplicaInfo] = {}
    wanted = {row.name: _replicas_wanted(redacted_config, row.name) for row in rows}

    async def probe(row: ServerInstanceInfo) -> ServerInstanceInfo:
        status = "exited"
        if row.replica is not None or _alive(row.pid):  # a replica's pid may be on another node
            try:
                resp = await http.request("GET", f"{row.url}/health", retry=NO_RETRY)
                status = "healthy" if resp.status == 200 else f"unhealthy (HTTP {resp.status})"
            except UpstreamError:
                status = "unreachable"
        uptime = round(time.time() - row.start_time, 1) if status != "exited" else None
        return row.model_copy(update={"status": status, "uptime_seconds": uptime})

    def replica_row(static: ServerInstanceInfo, rep: ReplicaInfo) -> ServerInstanceInfo:
        return static.model_copy(
            update={
                "process_name": f"{rep.instance}[{rep.replica}]",
                "host": rep.host,
                "port": rep.port,
                "url": rep.url,
                "pid": rep.pid,
                "start_time": rep.start_time,
                "replica": rep.replica,
                "node_id": rep.node_id,
                "node_ip": rep.node_ip,
            }
        )

    def current_rows() -> list[ServerInstanceInfo]:
        out: list[ServerInstanceInfo] = []
        for row in rows:
            reps = sorted(
                (r for r in replicas.values() if r.instance == row.name), key=lambda r: r.replica
            )
            out += [replica_row(row, r) for r in reps]
            if len(reps) < max(wanted[row.name], 1):  # not placed, or replicas still starting
                out.append(row)
        return out

    @app.get("/server_instances")
    async def server_instances() -> list[ServerInstanceInfo]:
        return list(await asyncio.gather(*(probe(row) for row in current_rows())))

    @app.post("/replicas")
    async def register_replica(info: ReplicaInfo) -> dict[str, bool]:
        replicas[(info.instance, info.replica)] = info
        return {"registered": True}

    @app.get("/replicas")
    async def list_replicas(instance: str | None = None) -> list[ReplicaInfo]:
        found = [r for r in replicas.values() if instance is None or r.instance == instance]
        return sorted(found, key=lambda r: (r.instance, r.replica))

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
