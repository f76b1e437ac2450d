"""How a server process starts: its settings, its socket, uvicorn.

``ng_run`` either forks the process (the default: the heavy imports are already loaded, so a
server is up in milliseconds) and hands it a :class:`LaunchContext` in memory, or spawns
``python app.py`` with the context in environment variables (``NEMO_GYM_CONFIG_DICT``, the
resolved config as YAML; ``NEMO_GYM_CONFIG_PATH``, the instance name; ``NEMO_GYM_LISTEN_FD``, an
inherited listening socket). Either way the listening socket was bound by ``ng_run`` before the
process started, so no other process can take the port in between.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from nemo_gym.config.instances import instance_section
from nemo_gym.config.server_settings import config_error_line, validate_settings
from nemo_gym.core.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nemo_gym.server.base import SimpleServer

logger = logging.getLogger(__name__)


@dataclass
class LaunchContext:
    """What ``ng_run`` gives a server process.

    Attributes:
        config: the resolved global config (in process memory only; never served).
        instance_name: which top-level key this process serves.
        sock: the listening socket bound for it, if any.
        graceful_shutdown_s: how long in-flight requests may run after a stop signal.
        extra: role-specific data (the head server's instance table).
    """

    config: dict[str, Any]
    instance_name: str
    sock: socket.socket | None = None
    graceful_shutdown_s: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)


_context: LaunchContext | None = None


def set_launch_context(context: LaunchContext) -> None:
    """Set this process's launch context (once, by ``ng_run``'s child setup)."""
    global _context
    _context = context


def current_launch_context() -> LaunchContext | None:
    """This process's launch context, or ``None`` when ``ng_run`` did not start the process.

    Raises:
        ConfigError: the environment names a config but not the instance (or the reverse).
    """
    if _context is None and not os.environ.get("NEMO_GYM_CONFIG_DICT"):
        return None
    return launch_context()


def launch_context() -> LaunchContext:
    """This process's launch context, from ``ng_run`` or from the environment.

    Raises:
        ConfigError: the process was not started by ``ng_run``.
    """
    if _context is not None:
        return _context
    raw = os.environ.get("NEMO_GYM_CONFIG_DICT")
    name = os.environ.get("NEMO_GYM_CONFIG_PATH")
    if not raw or not name:
        raise ConfigError(
            'this server is started by ng_run (e.g. ng_run "+config_paths=[...]"); run '
            "directly it needs NEMO_GYM_CONFIG_DICT and NEMO_GYM_CONFIG_PATH"
        )
    fd = os.environ.get("NEMO_GYM_LISTEN_FD")
    sock = socket.socket(fileno=int(fd)) if fd else None
    grace = float(os.environ.get("NEMO_GYM_GRACEFUL_SHUTDOWN_S", "30"))
    set_launch_context(LaunchContext(yaml.safe_load(raw), name, sock, grace))
    assert _context is not None
    return _context


def configure_process_logging() -> None:
    """Log Gym's records to stderr in uvicorn's format (server processes only)."""
    level = os.environ.get("NEMO_GYM_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, format="%(levelname)s:     %(name)s: %(message)s", stream=sys.stderr
    )


def _server_class() -> type[Any]:
    import uvicorn

    class GymUvicornServer(uvicorn.Server):
        """uvicorn's server, announcing its address also when given an inherited socket (uvicorn
        announces only the sockets it binds itself)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if sockets is not None and self.started:
                for sock in sockets:
                    host, port = sock.getsockname()[:2]
                    shown = f"[{host}]" if ":" in host else host
                    logging.getLogger("uvicorn.error").info(
                        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
                    )

    return GymUvicornServer


def serve(
    app: FastAPI, *, host: str, port: int, sock: socket.socket | None, graceful_shutdown_s: float
) -> None:
    """Run ``app`` on uvicorn (uvloop, httptools, no access log) until a stop signal."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=os.environ.get("NEMO_GYM_LOG_LEVEL", "info").lower(),
        timeout_graceful_shutdown=graceful_shutdown_s,  # type: ignore[arg-type]  # a float works
        timeout_keep_alive=60,
        # Thousands of clients connect at once (a collector starting 16,384 rollouts); the
        # kernel caps this at net.core.somaxconn. No limit_concurrency: the client decides.
        backlog=16384,
    )
    server = _server_class()(config)
    tune_gc()
    server.run(sockets=[sock] if sock is not None else None)
    if not server.started:  # e.g. an on_startup hook raised (logged, naming the server)
        sys.exit(3)


def tune_gc() -> None:
    """Keep the garbage collector off the request path of a long-running server.

    Everything alive at start-up (modules, the app) is moved out of the collector's view, and
    young-generation collections run every 20,000 allocations instead of 700: request handling
    makes few reference cycles, and the default made GC 7-9% of a busy server's CPU.
    """
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def build_server(cls: type[SimpleServer], context: LaunchContext) -> SimpleServer:
    """Validate this instance's settings against ``cls``'s config model and build it.

    Raises:
        ConfigError: naming the instance key that is unknown or does not validate.
    """
    from nemo_gym.server.client import ServerClient
    from nemo_gym.server.http_client import HttpClient, open_files_budget

    section = instance_section(context.config, context.instance_name)
    if section is None:
        raise ConfigError(f"no server instance named {context.instance_name!r} in the config")
    server_type, impl, settings = section
    config_cls = cls.model_fields["config"].annotation
    assert isinstance(config_cls, type)
    where = f"{context.instance_name}.{server_type}.{impl}"
    config = validate_settings(
        config_cls, {**settings, "name": context.instance_name}, where, context.config
    )
    timeout = float(settings.get("request_timeout_s") or 900.0)
    # NeMo Gym's keys size the pool when set; by default it leaves most of the process's open
    # files to its inbound connections (an agent serving 16,384 rollouts holds that many). A
    # twelfth each: the pool's limit counts connections in use, not idle ones, so an agent
    # holds up to this many to its model server and as many idle ones to its resources server
    # (16,384 + 2 x 1,666 fit a 20,000-descriptor limit; an eighth ran out of descriptors).
    limit = int(context.config.get("global_aiohttp_connector_limit") or 0) or min(
        4096, open_files_budget(1 / 12)
    )
    per_host = int(context.config.get("global_aiohttp_connector_limit_per_host") or 0) or limit
    http = HttpClient(timeout_s=timeout, limit=limit, limit_per_host=per_host)
    client = ServerClient(context.config, http)
    return cls(config=config, server_client=client)


def run_server(cls: type[SimpleServer]) -> None:
    """Build the server of this process and serve it until stopped."""
    configure_process_logging()
    context = launch_context()
    try:
        server = build_server(cls, context)
        app = server.setup_webserver()
    except ConfigError as exc:  # ng_run names the file and line (see config.server_settings)
        sys.stderr.write(config_error_line(exc) + "\n")
        sys.stderr.flush()
        sys.exit(2)
    serve(
        app,
        host=server.config.host,
        port=server.config.port,
        sock=context.sock,
        graceful_shutdown_s=context.graceful_shutdown_s,
    )
