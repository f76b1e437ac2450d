"""Binding every port and starting every server process for ``ng_run``.

Ports are bound here, before any process starts: the head server's first (a taken 11000 is
reported before anything else happens), then one per instance (port 0: the OS picks a free one).
The bound host and port are written into the resolved config that each server receives, so
servers find each other without asking the head server. Each server gets only the secrets its
own section holds: every other secret is redacted from its config and environment variables
holding one are not passed on. The head server is started last, with the process table and the
config with secrets redacted; it never sees a secret.
"""

from __future__ import annotations

import functools
import gc
import importlib
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nemo_gym.config.instances import ServerInstance
from nemo_gym.config.secrets import config_for_instance
from nemo_gym.head.app import run_head_server
from nemo_gym.server.launch import LaunchContext
from nemo_gym.supervisor.children import ChildProcess, fork_child, run_entrypoint, spawn_child
from nemo_gym.supervisor.display import instance_rows
from nemo_gym.supervisor.ports import bind_listener
from nemo_gym.supervisor.venvs import gym_source

#: What ng_run runs for an instance placed on a Ray cluster (its replicas' driver).
PLACEMENT_MODULE = "nemo_gym.ray_support.driver"
#: Imported once in ng_run before forking, so that forked servers start without importing them.
PRELOAD_MODULES = (
    "uvicorn",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
    "fastapi",
    "openai.types.responses",
    "openai.types.chat",
    "nemo_gym.base_resources_server",
    "nemo_gym.base_responses_api_agent",
    "nemo_gym.base_responses_api_model",
    "nemo_gym.openai_utils",
)


def preload() -> None:
    """Import the server stack in this (parent) process."""
    for name in PRELOAD_MODULES:
        importlib.import_module(name)


def start_servers(
    resolved: dict[str, Any],
    instances: list[ServerInstance],
    root: Path,
    mode: str,
    graceful_shutdown_s: float,
    redact: Callable[[Any], Any],
    interpreters: Mapping[str, Path] | None = None,
    env: dict[str, str] | None = None,
    placed: frozenset[str] = frozenset(),
) -> list[ChildProcess]:
    """Bind every port, then start every server and the head server.

    ``interpreters``: servers that run in their own environment (``venvs.py``), always
    started as ``python app.py`` with that environment's interpreter. ``env``: variables every
    server gets (the Ray cluster's address). ``placed``: instances that run as Ray replicas; for
    each, ``ng_run`` starts its placement process (``ray_support.driver``) on the instance's
    socket instead of the server itself.

    Raises:
        ConfigError: a port is taken (naming which server and which key to change).
    """
    head = resolved["head_server"]
    sockets: list[socket.socket] = [
        bind_listener(
            str(head["host"]), int(head["port"]), what="the head server", key="head_server.port"
        )
    ]
    for inst in instances:
        host = str(inst.settings.get("host") or resolved.get("default_host") or "127.0.0.1")
        port = int(inst.settings.get("port") or 0)
        sock = bind_listener(
            host,
            port,
            what=f"server {inst.name!r}",
            key=f"{inst.name}.{inst.server_type}.{inst.impl}.port",
        )
        inst.settings["host"], inst.settings["port"] = host, sock.getsockname()[1]
        sockets.append(sock)
    if mode == "fork":
        preload()
        gc.freeze()  # what the children inherit stays shared: the collector never writes to it
    sys_path = [str(root)]
    children: list[ChildProcess] = []
    try:
        for inst, sock in zip(instances, sockets[1:], strict=True):
            common: dict[str, Any] = {
                "name": inst.name,
                "server_type": inst.server_type,
                "implementation": inst.impl,
                "sock": sock,
            }
            # each server holds only its own secrets (in its config and its environment)
            config, withheld = config_for_instance(resolved, inst.name)
            python = (interpreters or {}).get(inst.name)
            own = [str(gym_source())] if python is not None else []  # Gym, not the venv's
            if mode == "fork" and python is None and inst.name not in placed:
                context = LaunchContext(config, inst.name, sock, graceful_shutdown_s)
                child = fork_child(
                    **common,
                    target=run_entrypoint(inst.entrypoint),
                    context=context,
                    workdir=inst.dir_path,
                    sys_path=[str(inst.dir_path), *sys_path],
                    withheld=withheld,
                    env=env,
                )
            # A server that dies is started again on the same listening socket (which ng_run
            # keeps open, so callers queue instead of being refused), as `python app.py`: a
            # fork of a supervisor whose event loop is running is not safe.
            respawn = functools.partial(
                spawn_child,
                **common,
                entrypoint=inst.entrypoint,
                config=config,
                graceful_shutdown_s=graceful_shutdown_s,
                env_path=[str(root), str(inst.dir_path), *own],
                withheld=withheld,
                python=str(python) if python is not None else None,
                extra_env=env,
                module=PLACEMENT_MODULE if inst.name in placed else None,
            )
            if mode != "fork" or python is not None or inst.name in placed:
                child = respawn()
            child.config_path = inst.source
            child.respawn = respawn
            children.append(child)
        redacted = redact(resolved)
        head_context = LaunchContext(
            redacted,
            "head_server",
            sockets[0],
            2.0,
            extra={"redacted_config": redacted, "instances": instance_rows(children)},
        )
        head_child = fork_child(
            name="head_server",
            server_type="head_server",
            implementation="head_server",
            sock=sockets[0],
            target=lambda: run_head_server(head_context),
            context=head_context,
            workdir=None,
            sys_path=[],
        )
        children.insert(0, head_child)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    for child, sock in zip(children, sockets, strict=True):
        child.sock = sock  # closed by the supervisor once every server has stopped
    return children
