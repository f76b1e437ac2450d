"""Ray settings without Ray: placement keys, the size of an ``auto`` cluster, the address."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nemo_gym.config.placement import is_placed, local_cluster_size, placed_instances
from nemo_gym.core.errors import ConfigError
from nemo_gym.ray_support.cluster import RayCluster, ensure_cluster
from tests.helpers import REPO


def _config(address: str | None) -> dict[str, object]:
    config: dict[str, object] = {
        "env": {
            "resources_servers": {
                "weather": {
                    "entrypoint": "app.py",
                    "num_replicas": 3,
                    "ray_actor_options": {"num_cpus": 1.5, "resources": {"cpu_node": 1}},
                }
            }
        },
        "model": {
            "responses_api_models": {
                "openai_model": {
                    "entrypoint": "app.py",
                    "ray_actor_options": {"num_cpus": 0, "resources": {"model_node": 0.5}},
                }
            }
        },
        "agent": {"responses_api_agents": {"simple_agent": {"entrypoint": "app.py"}}},
    }
    if address is not None:
        config["ray_head_node_address"] = address
    return config


def test_instances_with_placement_keys_run_as_replicas_only_with_an_address() -> None:
    assert placed_instances(_config("auto")) == ["env", "model"]
    assert not is_placed(_config("auto"), "agent")
    assert placed_instances(_config(None)) == []


def test_an_auto_cluster_offers_what_every_replica_asks_for() -> None:
    # env: 3 replicas x 1.5 CPUs = 4.5 -> 5 CPUs; cpu_node 3 x 1; model: 1 replica x 0.5
    size = local_cluster_size(_config("auto"), cpu_count=2)
    assert size == {"num_cpus": 5, "resources": {"cpu_node": 3.0, "model_node": 0.5}}
    assert local_cluster_size(_config("auto"), cpu_count=8)["num_cpus"] == 8


def test_addresses() -> None:
    local = RayCluster("127.0.0.1:6379")
    assert local.env() == {
        "RAY_ADDRESS": "127.0.0.1:6379",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    assert RayCluster("ray://10.0.0.5:10001").env() == {"RAY_ADDRESS": "ray://10.0.0.5:10001"}
    with pytest.raises(ConfigError, match="must be `auto` or a Ray address"):
        ensure_cluster("somewhere")
    with pytest.raises(ConfigError, match="no Ray cluster answers at 127.0.0.1:1"):
        ensure_cluster("127.0.0.1:1")


def test_ray_is_not_imported_when_it_is_not_configured() -> None:
    code = (
        "import sys; import nemo_gym.supervisor.startup, nemo_gym.head.client, "
        "nemo_gym.head.app, nemo_gym.ray_support.cluster; print('ray' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "False"
