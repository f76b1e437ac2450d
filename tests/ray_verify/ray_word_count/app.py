"""ray_word_count: an environment written as NeMo Gym's are, whose verify counts words in a
``@ray.remote`` task on the cluster NeMo Gym (here: ng_run) names in ``ray_head_node_address``.

Part of the compatibility suite: it imports only NeMo Gym's public names, joins the cluster with
``ray.init(address=...)`` on first use and reports, besides the reward, which process and Ray
node did the counting, so that a test can tell the work left the server.
"""

import os

import ray

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.global_config import RAY_HEAD_NODE_ADDRESS_KEY_NAME, get_global_config_dict


@ray.remote(num_cpus=1)
def count_words(text: str) -> dict:
    return {
        "words": len(text.split()),
        "pid": os.getpid(),
        "node_id": ray.get_runtime_context().get_node_id(),
    }


class RayWordCountConfig(BaseResourcesServerConfig):
    pass


class RayWordCountVerifyRequest(BaseVerifyRequest):
    expected_words: int


class RayWordCountVerifyResponse(BaseVerifyResponse):
    expected_words: int
    counted_words: int
    server_pid: int
    ray_worker_pid: int
    ray_node_id: str


class RayWordCountServer(SimpleResourcesServer):
    config: RayWordCountConfig

    async def verify(self, body: RayWordCountVerifyRequest) -> RayWordCountVerifyResponse:
        if not ray.is_initialized():
            address = get_global_config_dict().get(RAY_HEAD_NODE_ADDRESS_KEY_NAME)
            ray.init(address=address, ignore_reinit_error=True)
        text = " ".join(
            part.text
            for item in body.response.output
            if item.type == "message"
            for part in item.content
            if part.type == "output_text"
        )
        counted = await count_words.remote(text)
        return RayWordCountVerifyResponse(
            **body.model_dump(),
            reward=float(counted["words"] == body.expected_words),
            counted_words=counted["words"],
            server_pid=os.getpid(),
            ray_worker_pid=counted["pid"],
            ray_node_id=counted["node_id"],
        )


if __name__ == "__main__":
    RayWordCountServer.run_webserver()
