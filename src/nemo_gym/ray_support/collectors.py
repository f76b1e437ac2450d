"""``ng_collect_rollouts +ray_collectors=N``: N shard collectors as Ray tasks, then the merge.

Each collector is the real command (``ng_collect_rollouts +num_shards=N +shard_index=i`` with
the driver's other arguments) run in a subprocess by a Ray task; the tasks are spread over the
cluster's nodes (Ray's ``SPREAD`` strategy) and each reserves ``num_cpus`` on its node. They
write the shard files (``rollouts.sharding``), so the output's folder, the input file and the
working directory must be at the same paths on every node (a shared filesystem), and the head
server must be reachable from every node (``head_server.host`` not 127.0.0.1 across machines).
When every collector has finished, the driver merges the shards as ``ng_merge_rollouts`` does.
A collector that dies is reported with its shard; the same command with ``+resume=true`` runs
what is missing (a shard that never wrote its file starts afresh).

Ray is imported only when this runs (``cli/collect.py`` imports this module lazily).
Neighbours: ``offload`` (connecting, the workers' ``PYTHONPATH``), ``cli/merge.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nemo_gym.config.loader import CLI_SOURCE, LoadedConfig
from nemo_gym.core.errors import ConfigError, GymError
from nemo_gym.ray_support.offload import code_path, connect, import_ray, ray_address
from nemo_gym.rollouts.output import manifest_path
from nemo_gym.rollouts.sharding import shard_path

TAIL = 1500  # characters of a collector's output reported when it fails
DRIVER_ONLY = {"ray_collectors", "num_shards", "shard_index", "resume"}
COMMAND = "from nemo_gym.cli.collect import main; main()"


def _key(arg: str) -> str:
    return arg.lstrip("+~").split("=", 1)[0]


def shard_argv(argv: Sequence[str], index: int, count: int, resume: bool) -> list[str]:
    """The arguments of collector ``index``: the driver's, sharded."""
    kept = [a for a in argv if _key(a) not in DRIVER_ONLY]
    return [
        *kept,
        f"+num_shards={count}",
        f"+shard_index={index}",
        f"+resume={str(resume).lower()}",
    ]


def run_collector(args: list[str], cwd: str) -> dict[str, Any]:
    """On a Ray worker: run one collector; its exit code, output tail and node."""
    ray = import_ray()

    done = subprocess.run(
        [sys.executable, "-c", COMMAND, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return {
        "code": done.returncode,
        "tail": done.stdout[-TAIL:],
        "node_id": ray.get_runtime_context().get_node_id(),
    }


def run_collectors(
    count: int, output: Path, argv: Sequence[str], loaded: LoadedConfig, resume: bool
) -> list[dict[str, Any]]:
    """Run ``count`` collectors as Ray tasks and wait for all; one result per shard.

    Raises:
        ConfigError: no Ray cluster is known (``ray_head_node_address`` / ``RAY_ADDRESS``).
        GymError: Ray could not run a collector (its worker or node died).
    """
    try:
        address = loaded.data.get("ray_head_node_address")
    except Exception:  # an unresolvable value: let connect() name the key
        address = None
    connect(ray_address({"ray_head_node_address": address} if address else None))
    ray = import_ray()

    remote = ray.remote(run_collector).options(
        num_cpus=1,
        max_retries=0,
        scheduling_strategy="SPREAD",
        runtime_env={"env_vars": {"PYTHONPATH": code_path(run_collector)}},
    )
    refs = []
    for index in range(count):
        # resume a shard only where it has started: one with no file yet starts afresh
        started = manifest_path(shard_path(output, index, count)).exists()
        args = shard_argv(argv, index, count, resume and started)
        refs.append(remote.remote(args, os.getcwd()))
    results = []
    for index, ref in enumerate(refs):
        try:
            results.append(ray.get(ref))
        except ray.exceptions.RayError as exc:
            results.append({"code": None, "tail": str(exc)[-TAIL:], "node_id": None})
        results[-1]["shard_index"] = index
    return results


def check_collectors(count: int, num_shards: int | None, shard_index: int | None) -> None:
    """Refuse ``+ray_collectors`` combined with a shard of one's own choosing.

    Raises:
        ConfigError: naming the conflicting ``+key``.
    """
    if shard_index is not None:
        raise ConfigError(
            "cannot be combined with +ray_collectors (the driver runs every shard)",
            source=CLI_SOURCE,
            key="+shard_index",
        )
    if num_shards is not None and num_shards != count:
        raise ConfigError(
            f"+ray_collectors={count} runs {count} shards (got +num_shards={num_shards})",
            source=CLI_SOURCE,
            key="+num_shards",
        )


def report(results: list[dict[str, Any]]) -> tuple[list[str], GymError | None]:
    """The lines to print, one per collector (with the output tail of those that failed), and
    the error to raise when a collector did not finish (crashed, or its node died)."""
    lines, broken = [], []
    for res in results:
        code = res["code"]
        lines.append(
            f"Collector of shard {res['shard_index']}: exit {code} on Ray node {res['node_id']}"
        )
        if code not in (0, 3):
            broken.append(res["shard_index"])
            lines.append(res["tail"])
    if not broken:
        return lines, None
    return lines, GymError(
        f"the collectors of shard(s) {broken} did not finish; run the same command with "
        "+resume=true to complete them"
    )
