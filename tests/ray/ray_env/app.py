"""A test environment that uses Ray inside the server, as some NeMo Gym environments do.

``verify`` scores with a ``ray.remote`` task (the first ``.remote()`` call joins the cluster
``RAY_ADDRESS`` names, which ``ng_run`` sets); ``GET /ray_info`` says which cluster it joined.
"""

from __future__ import annotations

import os

import ray
from fastapi import FastAPI
from pydantic import BaseModel

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)


@ray.remote
def task_pid() -> int:
    return os.getpid()


class RayEnvConfig(BaseResourcesServerConfig):
    pass


class RayInfo(BaseModel):
    gcs_address: str
    server_pid: int
    task_pids: list[int]


class RayEnvServer(SimpleResourcesServer):
    config: RayEnvConfig
    task_pids: list[int] = []  # noqa: RUF012 - one server per process

    def setup_webserver(self) -> FastAPI:
        app = super().setup_webserver()
        app.get("/ray_info")(self.ray_info)
        return app

    async def verify(self, body: BaseVerifyRequest) -> BaseVerifyResponse:
        pid = await task_pid.remote()
        self.task_pids.append(pid)
        return BaseVerifyResponse(**body.model_dump(), reward=1.0 if pid != os.getpid() else 0.0)

    async def ray_info(self) -> RayInfo:
        return RayInfo(
            gcs_address=ray.get_runtime_context().gcs_address,
            server_pid=os.getpid(),
            task_pids=self.task_pids,
        )


if __name__ == "__main__":
    RayEnvServer.run_webserver()
