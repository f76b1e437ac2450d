"""A one-node Ray cluster on 127.0.0.1 for the tests, in its own process, driven through stdin.

Run as ``python -m tests.ray_verify.local_cluster`` with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
in the environment (else Ray replaces 127.0.0.1 by the machine's address). Starts Ray's own
``cluster_utils.Cluster``, prints ``ADDRESS <gcs address>`` and ``NODE <node id>``, and shuts
the cluster down when stdin says ``quit`` or closes, then prints ``STOPPED``.
"""

from __future__ import annotations

import sys


def main() -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    print(f"ADDRESS {cluster.address}", flush=True)
    print(f"NODE {cluster.head_node.node_id}", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    cluster.shutdown()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
