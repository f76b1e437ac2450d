"""A one-node Ray cluster on 127.0.0.1 for the tests, in its own process, driven through stdin.

:func:`loopback_cluster` runs it for a test as ``python -m tests.ray_verify.local_cluster``
with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in the environment (else Ray replaces 127.0.0.1 by
the machine's address). Starts Ray's own
``cluster_utils.Cluster``, prints ``ADDRESS <gcs address>`` and ``NODE <node id>``, and shuts
the cluster down when stdin says ``quit`` or closes, then prints ``STOPPED``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from tests.helpers import REPO, wait_for

#: Keeps Ray on 127.0.0.1 in every process that imports it (the cluster's, the servers').
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


@contextmanager
def loopback_cluster() -> Iterator[tuple[str, str]]:
    """Run this cluster in its own session; yield (address, node id); stop every process of
    it afterwards (and check that none is left)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ray_verify.local_cluster"],
        cwd=REPO,
        env={**os.environ, **LOOPBACK},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        address = proc.stdout.readline().split()[-1]
        node_id = proc.stdout.readline().split()[-1]
        yield address, node_id
    finally:
        proc.stdin.write("quit\n")
        proc.stdin.close()
        assert proc.wait(120) == 0
        stopped = proc.stdout.read().strip()
        proc.stdout.close()
        assert stopped == "STOPPED"
        wait_for(
            lambda: not [p for p in psutil.pids() if _session(p) == proc.pid],
            60,
            "the Ray cluster's processes to exit",
        )


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
