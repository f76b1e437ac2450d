"""``ng_collect_rollouts +ray_collectors=N``: N shard collectors as Ray tasks, then the merge.

Each collector is the real command (``ng_collect_rollouts +num_shards=N +shard_index=i`` with
the driver's other arguments) run in a subprocess by a Ray task, and reserves one CPU (plus the
custom resources of ``+ray_collector_resources``) on its node. Placement: when the cluster has
at least N live nodes offering that, the collectors run one per node (a placement group with
``STRICT_SPREAD``; collector ``i`` in bundle ``i``); otherwise, or when the group cannot be
placed within :data:`PLACE_TIMEOUT_S` (the nodes are busy), Ray's best-effort ``SPREAD``. Ray
kills the child processes of a worker that exits or is killed, so a collector never outlives its
task: a dead node or a cancelled run leaves no writer behind to race a resumed shard.

The collectors write the shard files (``rollouts.sharding``), so the output's folder, the input
file and the working directory must be at the same paths on every node (a shared filesystem),
and the head server must be reachable from every node (``head_server.host`` not 127.0.0.1
across machines). While they run, the driver counts the rows in the shard files every
:data:`POLL_S` seconds (:class:`ShardLines`, reading only what was appended) and reports each
collector as soon as it ends (``ray.wait``); when all have finished, it merges the shards as
``ng_merge_rollouts`` does. A collector that dies is reported with its shard; the same command
with ``+resume=true`` runs what is missing (a shard that never wrote its file starts afresh).

Ray is imported only when this runs (``cli/collect.py`` imports this module lazily).
Neighbours: ``offload`` (connecting, the workers' ``PYTHONPATH``), ``cli/merge.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nemo_gym.config.loader import CLI_SOURCE, LoadedConfig
from nemo_gym.core.errors import ConfigError, GymError
from nemo_gym.ray_support.offload import code_path, connect, import_ray, ray_address
from nemo_gym.rollouts.output import manifest_path
from nemo_gym.rollouts.sharding import read_record, record_path, shard_path

TAIL = 1500  # characters of a collector's output reported when it fails
DRIVER_ONLY = {"ray_collectors", "ray_collector_resources", "num_shards", "shard_index", "resume"}
POLL_S = 2.0  # seconds between two counts of the shard files' rows
PLACE_TIMEOUT_S = 30.0  # seconds to wait for one-collector-per-node placement
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


class ShardLines:
    """Rows in the shard files so far, and the units the shards were given (once known).

    Each count reads only the bytes appended since the last one; a file replaced (resume moves
    failed rows out by rewriting it) or cut shorter is counted again from its start.
    """

    def __init__(self, output: Path, count: int) -> None:
        self.files = [shard_path(output, i, count) for i in range(count)]
        self._seen: dict[Path, tuple[int, int, int]] = {}  # inode, bytes read, lines
        self._units: dict[Path, tuple[int, int]] = {}  # record's mtime, units in it

    def _lines(self, path: Path) -> int:
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._seen.pop(path, None)
            return 0
        inode, offset, lines = self._seen.get(path, (stat.st_ino, 0, 0))
        if inode != stat.st_ino or stat.st_size < offset:
            offset, lines = 0, 0
        with path.open("rb") as handle:
            handle.seek(offset)
            while offset < stat.st_size:
                block = handle.read(min(1 << 20, stat.st_size - offset))
                if not block:
                    break
                lines += block.count(b"\n")
                offset += len(block)
        self._seen[path] = (stat.st_ino, offset, lines)
        return lines

    def rows(self) -> int:
        return sum(self._lines(path) for path in self.files)

    def total(self) -> int | None:
        """Units of all shards, from their records (None until every shard wrote one); a
        record is read again only when it was replaced."""
        total = 0
        for path in self.files:
            try:
                stamp = record_path(path).stat().st_mtime_ns
                if self._units.get(path, (None, 0))[0] != stamp:
                    self._units[path] = (stamp, len(read_record(path).units))
            except (FileNotFoundError, ConfigError):
                return None
            total += self._units[path][1]
        return total


def _placement(
    ray: Any, count: int, bundle: dict[str, float]
) -> tuple[Any, list[dict[str, Any]], list[str | None]]:
    """The placement group (or None), each collector's scheduling options and its node (if
    known before it starts)."""
    spread: list[dict[str, Any]] = [{"scheduling_strategy": "SPREAD"}] * count
    eligible = [
        node
        for node in ray.nodes()
        if node.get("Alive")
        and all(node.get("Resources", {}).get(k, 0) >= v for k, v in bundle.items())
    ]
    if count < 2 or len(eligible) < count:
        return None, spread, [None] * count
    util = ray.util  # placement groups, loaded with ray itself
    group = util.placement_group([dict(bundle)] * count, strategy="STRICT_SPREAD")
    ready, _ = ray.wait([group.ready()], timeout=PLACE_TIMEOUT_S)
    if not ready:
        util.remove_placement_group(group)
        return None, spread, [None] * count
    nodes = util.placement_group_table(group)["bundles_to_node_id"]
    strategy = util.scheduling_strategies.PlacementGroupSchedulingStrategy
    options = [{"scheduling_strategy": strategy(group, index)} for index in range(count)]
    return group, options, [nodes[i] for i in range(count)]


def run_collectors(
    count: int,
    output: Path,
    argv: Sequence[str],
    loaded: LoadedConfig,
    resume: bool,
    *,
    resources: dict[str, float] | None = None,
    on_start: Callable[[int, str | None], None] = lambda index, node: None,
    on_progress: Callable[[int, int | None], None] = lambda rows, total: None,
    on_end: Callable[[dict[str, Any]], None] = lambda result: None,
) -> list[dict[str, Any]]:
    """Run ``count`` collectors as Ray tasks and wait for all; one result per shard.

    ``on_start(shard, node)`` is called for each collector started (its node when placed one
    per node, else None), ``on_progress(rows, total)`` every :data:`POLL_S` seconds and once
    at the end with the rows in the shard files and the units of all shards (None while not
    known), ``on_end(result)`` as soon as a collector has ended.

    Raises:
        ConfigError: no Ray cluster is known (``ray_head_node_address`` / ``RAY_ADDRESS``).
    """
    try:
        address = loaded.data.get("ray_head_node_address")
    except Exception:  # an unresolvable value: let connect() name the key
        address = None
    connect(ray_address({"ray_head_node_address": address} if address else None))
    ray = import_ray()

    extra = dict(resources or {})
    group, options, nodes = _placement(ray, count, {"CPU": 1.0, **extra})
    remote = ray.remote(run_collector)
    common = {
        "num_cpus": 1,
        "resources": extra,
        "max_retries": 0,
        "runtime_env": {"env_vars": {"PYTHONPATH": code_path(run_collector)}},
    }
    lines = ShardLines(output, count)
    shard_of = {}
    try:
        for index in range(count):
            # resume a shard only where it has started: one with no file yet starts afresh
            started = manifest_path(shard_path(output, index, count)).exists()
            args = shard_argv(argv, index, count, resume and started)
            ref = remote.options(**common, **options[index]).remote(args, os.getcwd())
            shard_of[ref] = index
            on_start(index, nodes[index])
        results: dict[int, dict[str, Any]] = {}
        pending = list(shard_of)
        while pending:
            ended, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
            for ref in ended:
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # its worker or node died
                    node = nodes[shard_of[ref]]  # where it was placed, if known
                    result = {"code": None, "tail": str(exc)[-TAIL:], "node_id": node}
                result["shard_index"] = shard_of[ref]
                results[shard_of[ref]] = result
                on_end(result)
            on_progress(lines.rows(), lines.total())
    finally:
        if group is not None:
            ray.util.remove_placement_group(group)
    return [results[index] for index in range(count)]


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


def collector_line(result: dict[str, Any]) -> str:
    """``Collector of shard i: exit <code> on Ray node <id>``."""
    return (
        f"Collector of shard {result['shard_index']}: exit {result['code']} "
        f"on Ray node {result['node_id']}"
    )


def report(results: list[dict[str, Any]]) -> tuple[list[str], GymError | None]:
    """The output tails of the collectors that failed, and the error to raise when a collector
    did not finish (crashed, or its node died)."""
    tails, broken = [], []
    for res in results:
        if res["code"] not in (0, 3):
            broken.append(res["shard_index"])
            tails.append(f"{collector_line(res)}; its last output:\n{res['tail']}")
    if not broken:
        return tails, None
    return tails, GymError(
        f"the collectors of shard(s) {broken} did not finish; run the same command with "
        "+resume=true to complete them"
    )
