"""The placement process of one replicated instance: ``python -m nemo_gym.ray_support.driver``.

``ng_run`` starts this in place of the instance's own process when the instance is placed on
the Ray cluster (``config.placement``), with the same launch context (the resolved config, the
instance name, the listening socket ``ng_run`` bound for the instance) and ``RAY_ADDRESS``. It
joins the cluster as a driver, creates ``num_replicas`` :class:`~.actors.ReplicaServer` actors
with the instance's ``ray_actor_options``, and answers ``GET /health`` on the instance's socket
(200 once every replica is up; 503 before), which is what ``ng_run`` waits for. The actors
belong to this driver: when it exits, Ray ends them and their servers. Every other request to
the instance's own address is passed on to a replica (``ray_support.proxy``), so a caller that
knows only the configured address, such as ``ng_collect_rollouts`` calling an agent's ``/run``
or ``curl``, reaches the replicas too; Gym's servers call the replicas directly. If a replica is
gone for good (Ray used up its restarts), this process exits 1 and ``ng_run``'s restart policy
applies. On SIGTERM it stops every replica's server gracefully, then itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from nemo_gym.config.instances import instance_section
from nemo_gym.config.placement import placement_of
from nemo_gym.ray_support.actors import ReplicaServer, ReplicaSpec, entrypoint_of
from nemo_gym.ray_support.cluster import RayCluster, connect
from nemo_gym.ray_support.offload import import_ray
from nemo_gym.ray_support.proxy import proxy_handler
from nemo_gym.server.client import head_url
from nemo_gym.server.http_client import HttpClient
from nemo_gym.server.launch import configure_process_logging, launch_context
from nemo_gym.server.replicas import ReplicaSet

logger = logging.getLogger(__name__)
WATCH_S = 2.0
PENDING_NOTE_S = 15.0


def _actor_env() -> dict[str, str]:
    keep = ("PYTHONPATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "NEMO_GYM_LOG_LEVEL", "RAY_ADDRESS")
    return {k: os.environ[k] for k in keep if k in os.environ}


async def _serve(
    actors: list[Any], needs: dict[str, Any], ready: asyncio.Event, stop: asyncio.Event
) -> int:
    ray = import_ray()

    context = launch_context()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"replicas": len(actors)}, status=200 if ready.is_set() else 503)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/health", health)
    http = HttpClient(timeout_s=3600.0)
    replicas = ReplicaSet(context.config, http)
    app.router.add_route("*", "/{tail:.*}", proxy_handler(context.instance_name, replicas, http))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert context.sock is not None
    await web.SockSite(runner, context.sock).start()
    try:
        described = asyncio.ensure_future(asyncio.gather(*(a.describe.remote() for a in actors)))
        while not (await asyncio.wait({described}, timeout=PENDING_NOTE_S))[0]:
            logger.warning(
                "%s: still waiting for the cluster to start its %d replicas (each needs %s); "
                "`ray status` shows what the cluster offers",
                context.instance_name, len(actors), needs,
            )  # fmt: skip
        infos = described.result()
        for info in infos:
            logger.info(
                "replica %d of %s: %s on node %s", info["replica"], info["instance"],
                info["url"], info["node_id"][:12],
            )  # fmt: skip
        ready.set()
        stopping = asyncio.ensure_future(stop.wait())
        while not stop.is_set():
            await asyncio.wait({stopping}, timeout=WATCH_S)
            # a restarting replica answers once it is back; one gone for good raises
            check = asyncio.ensure_future(asyncio.gather(*(a.describe.remote() for a in actors)))
            await asyncio.wait({check, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not check.done():
                check.cancel()
            elif check.exception() is not None:
                raise check.exception()
        return 0
    except ray.exceptions.RayActorError as exc:
        if stop.is_set():
            return 0
        logger.error("a replica of %s is gone for good: %s", context.instance_name, exc)
        return 1
    finally:
        await runner.cleanup()
        await http.close()


async def _run() -> int:
    ray = import_ray()

    context = launch_context()
    name = context.instance_name
    section = instance_section(context.config, name)
    assert section is not None
    placement = placement_of(section[2])
    assert placement is not None
    connect(RayCluster(os.environ["RAY_ADDRESS"]), log_to_driver=True)
    options = placement.ray_actor_options
    actor_cls: Any = ray.remote(ReplicaServer)
    workdir = Path.cwd()
    actors = [
        actor_cls.options(
            num_cpus=options.num_cpus,
            num_gpus=options.num_gpus,
            resources=options.resources,
            max_restarts=options.max_restarts,
            max_task_retries=-1,  # a call to a restarting replica waits for it
            runtime_env={"env_vars": _actor_env()},
        ).remote(
            ReplicaSpec(
                instance=name,
                replica=i,
                config=context.config,
                entrypoint=entrypoint_of(section[2], workdir),
                workdir=str(workdir),
                head_url=head_url(context.config),
                graceful_shutdown_s=context.graceful_shutdown_s,
            )
        )
        for i in range(placement.num_replicas)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    needs = options.model_dump(exclude={"max_restarts"})
    code = await _serve(actors, needs, asyncio.Event(), stop)
    stops = [a.stop.remote() for a in actors]
    try:
        await asyncio.wait_for(
            asyncio.gather(*stops, return_exceptions=True), context.graceful_shutdown_s + 5.0
        )
    except TimeoutError:
        logger.warning("replicas of %s did not stop in time; ending them", name)
    for actor in actors:
        ray.kill(actor, no_restart=True)
    ray.shutdown()
    return code


def main() -> None:
    """Entry point of the placement process."""
    configure_process_logging()
    code = asyncio.run(_run())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # Ray's threads would delay a normal exit


if __name__ == "__main__":
    main()
