"""``ng_merge_rollouts``: merge the shard files of a sharded collection and report on the whole."""

from __future__ import annotations

import glob
import json
from pathlib import Path

from pydantic import BaseModel, Field

from nemo_gym.cli.collect import check_output_path
from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.loader import CLI_SOURCE, LoadedConfig
from nemo_gym.config.settings import head_address
from nemo_gym.core.errors import ConfigError, GymError
from nemo_gym.head.client import ServerClient, fetch_global_config, head_url
from nemo_gym.rollouts.merge import check_target, load_shards, write_merged
from nemo_gym.rollouts.metrics import MetricsReport, report_metrics
from nemo_gym.rollouts.sharding import SHARD_NAME
from nemo_gym.rollouts.summary import summarise


class MergeParams(BaseModel):
    """Merge the files written by ng_collect_rollouts +num_shards=N +shard_index=i (one per
    shard) into one output, after checking that every shard is there, that no (row, repeat)
    rollout is missing or in two shards, and that all are of one run. The rows are written
    sorted by (row, repeat): the file an unsharded run writes, which +resume=true can continue.
    Then prints the summary of the whole run and, while ng_run serves the environment, writes
    <output stem>_aggregate_metrics.json from its agents, as ng_collect_rollouts does."""

    output_jsonl_fpath: str = Field(
        description="The merged file: the +output_jsonl_fpath the shards were collected with."
    )
    input_glob: str | None = Field(
        default=None,
        description="The shard files (default: <stem>.shard-*-of-*.jsonl beside the output).",
    )
    aggregate_metrics: bool = Field(
        default=True,
        description="Ask the running servers (ng_run) for the aggregate metrics; false: only "
        "merge and summarise.",
    )


def shard_files(output: Path, pattern: str | None) -> list[Path]:
    """The shard files to merge.

    Raises:
        ConfigError: no file matches (naming the pattern).
    """
    if pattern is None:
        pattern = str(output.with_name(f"{glob.escape(output.stem)}.shard-*-of-*{output.suffix}"))
    files = sorted(p for p in map(Path, glob.glob(pattern)) if SHARD_NAME.match(p.stem))
    if not files:
        raise ConfigError(
            f"no shard file (<stem>.shard-<i>-of-<N>.jsonl) matches {pattern!r}",
            source=CLI_SOURCE,
            key="+input_glob",
        )
    return files


def merge(output: Path, pattern: str | None, loaded: LoadedConfig, aggregate: bool) -> int:
    """Merge the shards of ``output``, print the whole run's summary and write its metrics.

    Returns:
        The exit code: 0, or 3 when some rows failed (as ``ng_collect_rollouts``).

    Raises:
        ConfigError: the shards are not one complete collection (see ``rollouts.merge``).
        GymError: the aggregate metrics were asked for and no ng_run answers.
    """
    files = shard_files(output, pattern)
    merged = load_shards(files)
    if output in files:
        raise ConfigError("is one of the shard files", source=CLI_SOURCE, key="+output_jsonl_fpath")
    replaced = check_target(output, merged.run_key)
    write_merged(merged, output)
    count = merged.shards[0].count
    print(
        f"{'Replaced' if replaced else 'Wrote'} {output}: {len(merged.rows)} rows from "
        f"{count} shards, every (row, repeat) once (run {merged.run_key})."
    )
    summary = summarise(merged.rows)
    print(json.dumps(summary.averages() or {"reward": None}, indent=4))
    print(f"{summary.line()} -> {output}")
    if aggregate:
        host, port = head_address(loaded)
        try:
            config = fetch_global_config(head_url({"head_server": {"host": host, "port": port}}))
        except GymError as exc:
            raise GymError(
                f"merged {output}, but the aggregate metrics need the environment's servers: "
                f"{exc}. Start ng_run with the same config and merge again, or pass "
                "+aggregate_metrics=false"
            ) from None
        print(report_metrics(ServerClient(config), summary, output).text())
    else:
        print(MetricsReport(*summary.pass_majority()).text())
    if summary.statuses["failed"]:
        print(
            f"{summary.statuses['failed']} rollouts failed: resume their shards "
            "(+resume=true) to retry them, then merge again."
        )
        return 3
    return 0


@cli_entry
def main() -> int:
    params, loaded = load_params(MergeParams, "ng_merge_rollouts")
    output = Path(params.output_jsonl_fpath)
    check_output_path(output)
    return merge(output, params.input_glob, loaded, params.aggregate_metrics)
