"""A two-node Ray cluster on 127.0.0.1 for the tests, driven through stdin.

Run as ``python -m tests.ray.two_nodes`` in a new session. Ray's own ``cluster_utils.Cluster``
starts the head node (``model_node``) and a second node (``cpu_node``), each with its own raylet.
Prints ``ADDRESS <gcs address>``, then ``NODE <head|cpu> <raylet pid> <node id>`` for each node,
and ``READY``. Reads commands, one a line: ``kill_cpu`` (the CPU node dies at once, as a crashed
machine would), ``add_cpu`` (a new CPU node; prints its ``NODE`` line), ``quit`` (shuts the
cluster down and exits). Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (every node on the
loopback address) and the token of ``RAY_AUTH_TOKEN`` from the environment it is started with.
"""

from __future__ import annotations

import sys
from typing import Any

CPU_NODE = {"num_cpus": 2, "resources": {"cpu_node": 4}}


def _describe(node: Any) -> str:
    """``<raylet pid> <node id>``."""
    return f"{int(node.all_processes['raylet'][0].process.pid)} {node.node_id}"


def main() -> None:
    from ray.cluster_utils import Cluster

    head_args = {"num_cpus": 1, "resources": {"model_node": 1}, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    cpu = cluster.add_node(**CPU_NODE)
    print(f"ADDRESS {cluster.address}", flush=True)
    print(f"NODE head {_describe(cluster.head_node)}", flush=True)
    print(f"NODE cpu {_describe(cpu)}", flush=True)
    print("READY", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "kill_cpu":
            cluster.remove_node(cpu, allow_graceful=False)
            print("KILLED", flush=True)
        elif command == "add_cpu":
            cpu = cluster.add_node(**CPU_NODE)
            print(f"NODE cpu {_describe(cpu)}", flush=True)
        elif command == "quit":
            break
    cluster.shutdown()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
