"""CPU-heavy verification on Ray: run one function as a Ray task anywhere on the cluster.

An environment whose config says ``verify_on_ray: true`` sends its heavy checks (code_gen's test
runs, math_with_judge's symbolic check) through :func:`offload`, which runs ``fn(*args)`` as a
Ray task (placed by Ray on any node with a free CPU) and awaits its result without blocking the
server's event loop; otherwise :func:`offload` awaits ``local()``, the environment's own local
path (its process pool or sandbox), unchanged. A coroutine function is run with
``asyncio.run`` inside the worker.

The task must find the environment's code on the worker: the folder that holds ``fn``'s
top-level package (and the server's ``PYTHONPATH``) is put on the worker's ``PYTHONPATH``, so on
a multi-node cluster that path must exist on every node (a shared filesystem, or the same
checkout). The cluster is the one the process is already connected to, else
``ray_head_node_address`` (the address ``ng_run`` passes its servers, as NeMo Gym does), else
``RAY_ADDRESS``.

Ray is imported only here and only when a task is offloaded: nothing on the default path imports
it. Neighbour: ``ray_support.cluster`` (starting and joining clusters under ``ng_run``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from nemo_gym.core.errors import ConfigError, GymError

logger = logging.getLogger(__name__)

R = TypeVar("R")
ADDRESS_KEY = "ray_head_node_address"
_connect_lock = threading.Lock()


class OffloadError(GymError):
    """The Ray task could not run, or its worker died (the verifier is broken, not the row)."""


def import_ray() -> ModuleType:
    """Ray, imported now (never at module import).

    Raises:
        ConfigError: Ray is not installed (the ``ray`` extra).
    """
    try:
        import ray
        import ray.exceptions
    except ImportError:
        raise ConfigError(
            "this needs Ray, which is not installed: install the ray extra "
            "(pip install 'nemo-gym[ray]')",
            key="ray",
        ) from None
    return ray


def ray_address(config: Any = None) -> str | None:
    """The cluster to join: ``ray_head_node_address`` of ``config`` (a mapping), else
    ``RAY_ADDRESS`` (None: neither is set)."""
    value = config.get(ADDRESS_KEY) if config is not None else None
    return str(value) if value else os.environ.get("RAY_ADDRESS") or None


def connect(address: str | None) -> None:
    """Connect this process to the Ray cluster at ``address`` (once; a no-op when connected).

    Raises:
        ConfigError: not connected and no address given.
    """
    ray = import_ray()
    with _connect_lock:
        if ray.is_initialized():
            return
        if not address:
            raise ConfigError(
                "verify_on_ray is true but no Ray cluster is known: set ray_head_node_address "
                "(ng_run passes it to its servers) or RAY_ADDRESS",
                key=ADDRESS_KEY,
            )
        ray.init(address=address, ignore_reinit_error=True, logging_level=logging.WARNING)


def code_path(fn: Callable[..., Any]) -> str:
    """``PYTHONPATH`` for the worker: the root of ``fn``'s top-level package, then ours."""
    paths: list[str] = []
    top = sys.modules.get(fn.__module__.split(".")[0])
    origin = getattr(top, "__file__", None)
    if origin:  # a package's __init__.py, or a top-level module such as an env's app.py
        file = Path(origin).resolve()
        paths.append(str(file.parent.parent if file.name == "__init__.py" else file.parent))
    elif top is not None and getattr(top, "__path__", None):  # a namespace package
        paths.append(str(Path(list(top.__path__)[0]).resolve().parent))
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(paths))


def _run_in_worker(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if inspect.iscoroutinefunction(fn):
        return asyncio.run(fn(*args))
    return fn(*args)


async def offload(
    fn: Callable[..., R],
    *args: Any,
    on_ray: bool,
    local: Callable[[], Awaitable[R]],
    timeout_s: float,
    address: str | None = None,
    num_cpus: float = 1.0,
) -> R:
    """Run ``fn(*args)`` as a Ray task when ``on_ray``, else await ``local()``.

    Args:
        fn: a module-level function (importable on the worker); sync or async.
        on_ray: the server's ``verify_on_ray``.
        local: today's local path, awaited when ``on_ray`` is false.
        timeout_s: the task's deadline; past it the task is cancelled (its worker killed).
        address: the cluster (see :func:`ray_address`), used when not yet connected.
        num_cpus: CPUs the task reserves on its node.

    Raises:
        TimeoutError: the task did not finish within ``timeout_s``.
        OffloadError: the task's worker died or Ray could not run it.
        ConfigError: no cluster to connect to.
        Exception: whatever ``fn`` raised, as it raised it.
    """
    if not on_ray:
        return await local()
    await asyncio.to_thread(connect, address)
    ray = import_ray()
    errors = ray.exceptions

    remote = ray.remote(_run_in_worker).options(
        num_cpus=num_cpus,
        max_retries=0,
        name=getattr(fn, "__qualname__", "offload"),
        runtime_env={"env_vars": {"PYTHONPATH": code_path(fn)}},
    )
    ref = remote.remote(fn, args)
    try:
        result: R = await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout_s)
        return result
    except TimeoutError:
        ray.cancel(ref, force=True)
        raise
    except errors.RayTaskError as exc:
        if isinstance(exc.cause, Exception):
            raise exc.cause from None  # what fn raised, for the caller's own handling
        raise OffloadError(f"the Ray task {fn.__qualname__} failed: {exc}") from None
    except (errors.WorkerCrashedError, errors.TaskCancelledError) as exc:
        raise OffloadError(f"the Ray worker running {fn.__qualname__} died: {exc}") from None
