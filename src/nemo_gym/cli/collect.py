"""``ng_collect_rollouts``: run every row of a JSONL file through an agent and save the rows."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, ClassVar

import uvloop
from pydantic import BaseModel, Field
from tqdm import tqdm

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.instances import check_agent_name, instance_section
from nemo_gym.config.loader import CLI_SOURCE, LoadedConfig
from nemo_gym.config.settings import head_address
from nemo_gym.core.errors import ConfigError
from nemo_gym.rollouts.breaker import ServerBreaker, ServersDown, health_probe
from nemo_gym.rollouts.collect import collect
from nemo_gym.rollouts.inputs import expand, identify, read_rows
from nemo_gym.rollouts.metrics import report_metrics
from nemo_gym.rollouts.output import (
    RowWriter,
    build_manifest,
    finish_interrupted_rewrite,
    repair_partial_line,
)
from nemo_gym.rollouts.resume import failures_path, plan_run
from nemo_gym.rollouts.routing import add_seed, repeats_for, route_rows
from nemo_gym.rollouts.sharding import check_shard, write_record
from nemo_gym.rollouts.summary import summarise
from nemo_gym.server.client import ServerClient, fetch_global_config, head_url
from nemo_gym.server.http_client import HttpClient

DEFAULT_PARALLEL = 64


class CollectParams(BaseModel):
    """Collect verified rollouts: post every row of the input JSONL to an agent's /run (while
    ng_run serves it) and append each result row to the output JSONL as soon as it finishes.
    Prints the average of every numeric field over the scored rows and the mean reward's 95%
    confidence interval (Wilson when every reward is 0 or 1, else Student t), and counts failed
    rows separately (they are written, with _ng_status "failed", never averaged in as 0)."""

    agent_name: str | None = Field(
        default=None,
        description="Agent to run rows that name none in agent_ref, e.g. "
        "example_single_tool_call_simple_agent (a row's own agent_ref wins).",
    )
    input_jsonl_fpath: str = Field(
        description="Input tasks: one JSON object per line with "
        "responses_create_params (and any fields the verifier needs)."
    )
    output_jsonl_fpath: str = Field(description="Where rollouts are appended (created if missing).")
    limit: int | None = Field(
        default=None, ge=0, description="Use only the first N rows (0 or null: all)."
    )
    num_repeats: int | dict[str, int] | None = Field(
        default=None,
        description="Rollouts per row, in the order aabbcc (for mean@k / pass@k); or per agent: "
        "+num_repeats={my_agent:4,_default:1}.",
    )
    num_repeats_add_seed: bool = Field(
        default=False,
        description="Give each repeat its own seed (its rollout index), as NeMo Gym does.",
    )
    num_samples_in_parallel: int | None = Field(
        default=None,
        ge=1,
        description=(
            f"Rollouts in flight at most (default {DEFAULT_PARALLEL}); fewer while an "
            "upstream model API answers 429 (lowered and raised again automatically)."
        ),
    )
    responses_create_params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Overrides merged into every row's responses_create_params, e.g. "
            "+responses_create_params.temperature=0.5."
        ),
    )
    resume: bool = Field(
        default=False,
        description="Run only the (row, repeat) pairs missing from the output file, and those "
        "that failed (up to max_attempts); refuses a file with no run of this input and config.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Attempts of a failed rollout across resumes; earlier ones move to "
        "<output stem>_failures.jsonl.",
    )
    rollout_timeout_s: float = Field(default=3600.0, gt=0, description="Deadline of one rollout.")
    run_batch: bool = Field(
        default=True,
        description="Send rows to agents built on Gym's agent base in shared /run_batch streams "
        "(a few hundred connections for 16,384 in flight); false: one /run request per row, as "
        "NeMo Gym does. Agents without the route always get one /run per row.",
    )
    server_down_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="While a server does not answer /health, collection pauses (failed "
        "rollouts are run again once it is back); after this many seconds it stops.",
    )
    num_shards: int | None = Field(
        default=None,
        description="Split the (row, repeat) rollouts into N shards; with +shard_index=i this "
        "collector runs shard i into <stem>.shard-<i>-of-<N>.jsonl (then ng_merge_rollouts).",
    )
    shard_index: int | None = Field(
        default=None, description="The shard this collector runs (0 to num_shards - 1)."
    )
    ray_collectors: int | None = Field(
        default=None,
        ge=1,
        description="Run N shard collectors as Ray tasks on the cluster of "
        "+ray_head_node_address (shared filesystem), one per node when there are N nodes "
        "that fit, then merge them into the output.",
    )
    ray_collector_resources: dict[str, float] | None = Field(
        default=None,
        description="Custom Ray resources each +ray_collectors collector reserves besides one "
        "CPU, e.g. {cpu_node: 1} to keep them on the nodes that offer cpu_node.",
    )

    #: Later NeMo Gym's names for what Gym calls otherwise (see ``cli.params``).
    renamed_parameters: ClassVar[dict[str, str]] = {"resume_from_cache": "resume"}


def check_output_path(path: Path, key: str = "+output_jsonl_fpath") -> None:
    """Refuse an output path that cannot be a file before anything runs.

    Raises:
        ConfigError: ``path`` is a directory, sits under a file, or cannot be written.
    """
    if path.is_dir():
        raise ConfigError(
            f"{str(path)!r} is a directory; name a file in it, e.g. {path / 'rollouts.jsonl'}",
            source=CLI_SOURCE,
            key=key,
        )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(
            f"cannot create {str(path)!r}: {str(parent)!r} is a file, not a directory",
            source=CLI_SOURCE,
            key=key,
        )
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise ConfigError(
            f"cannot write {str(path)!r}: permission denied on {str(target)!r}",
            source=CLI_SOURCE,
            key=key,
        )


def _on_ray(params: CollectParams, loaded: LoadedConfig, output: Path) -> int:
    """``+ray_collectors=N``: every shard collected by a Ray task, then merged."""
    from nemo_gym.cli.merge import merge
    from nemo_gym.ray_support import collectors

    count = params.ray_collectors or 1
    collectors.check_collectors(count, params.num_shards, params.shard_index)
    check_output_path(output)
    bar = tqdm(desc=f"Rows written by {count} collectors", unit="rows", file=sys.stderr)

    def started(index: int, node: str | None) -> None:
        if node is not None:
            bar.write(f"Collector of shard {index}: placed on Ray node {node}", file=sys.stdout)

    def progress(rows: int, total: int | None) -> None:
        if (rows, total or bar.total) != (bar.n, bar.total):  # a line per change, not per poll
            bar.total = total or bar.total
            bar.n = rows
            bar.refresh()

    def ended(result: dict[str, Any]) -> None:
        bar.write(collectors.collector_line(result), file=sys.stdout)

    try:
        results = collectors.run_collectors(
            count,
            output,
            sys.argv[1:],
            loaded,
            params.resume,
            resources=params.ray_collector_resources,
            on_start=started,
            on_progress=progress,
            on_end=ended,
        )
    finally:
        bar.close()
    tails, error = collectors.report(results)
    if tails:
        print("\n".join(tails))
    if error is not None:
        raise error
    return merge(output, None, loaded, aggregate=True)


@cli_entry
def main() -> int:
    params, loaded = load_params(CollectParams, "ng_collect_rollouts")
    input_path = Path(params.input_jsonl_fpath)
    output_path = Path(params.output_jsonl_fpath)
    if params.ray_collectors is not None:
        return _on_ray(params, loaded, output_path)
    shard = check_shard(params.num_shards, params.shard_index)
    if shard is not None:
        output_path = shard.path(output_path)
    check_output_path(output_path)
    host, port = head_address(loaded)
    rows = read_rows(
        input_path, limit=params.limit or None, overrides=params.responses_create_params
    )
    agents = route_rows(rows, params.agent_name, str(input_path))
    tasks = expand(rows, repeats_for(agents, params.num_repeats))
    print(f"Found {len(tasks)} rows!")
    if len(tasks) > len(rows):
        print(f"Repeating rows from {len(rows)} to {len(tasks)}!")
    total = len(tasks)
    if shard is not None:
        tasks = shard.select(tasks)
        print(f"{shard}: {len(tasks)} of the {total} rollouts -> {output_path}")
    if params.responses_create_params:
        print(f"Overriding responses_create_params fields with {params.responses_create_params}")

    client = ServerClient(
        fetch_global_config(head_url({"head_server": {"host": host, "port": port}}))
    )
    urls: dict[str, str] = {}
    for agent in dict.fromkeys(agents):
        check_agent_name(client.global_config_dict, agent)
        urls[agent] = client.base_url(agent) + "/run"

    manifest = build_manifest(
        input_path=input_path,
        rows=rows,
        agent_name=",".join(sorted(urls)),
        num_repeats=params.num_repeats or 1,
        limit=params.limit or None,
        overrides=params.responses_create_params,
    )
    if finish_interrupted_rewrite(output_path):
        print(f"Note: finished rewriting {output_path}, which an earlier run left half done.")
    cut = repair_partial_line(output_path)
    if cut:
        print(f"Note: removed an unfinished last line ({cut} bytes) from {output_path}.")
    plan = plan_run(output_path, manifest, resume=params.resume, max_attempts=params.max_attempts)
    if shard is not None:
        write_record(output_path, shard, plan.key, total, tasks)
    if params.resume:
        tasks = [t for t in tasks if t.key not in plan.done]
        retried = sum(1 for t in tasks if t.key in plan.retry)
        print(
            f"Resuming: {len(plan.kept)} rows of this run already in {output_path}, "
            f"{len(tasks)} to run ({retried} failed before and tried again"
            + (
                f", {plan.given_up} failed {params.max_attempts} times and kept"
                if plan.given_up
                else ""
            )
            + ")."
        )
        if plan.moved:
            print(f"Moved {plan.moved} failed attempts to {failures_path(output_path)}.")
    for task in tasks:
        identify(task, plan.key, plan.retry.get(task.key, 0))
        if params.num_repeats_add_seed:
            add_seed(task)
    # the rows wait as JSON until they run: parsed, they cost a few KB each for the whole run
    packed = [task.packed() for task in tasks]
    del rows, tasks
    writer = RowWriter(output_path)  # creates the output's folder

    parallel = min(params.num_samples_in_parallel or DEFAULT_PARALLEL, max(1, len(packed)))
    summary = summarise(plan.kept)
    bar = tqdm(total=len(packed), desc="Collecting rollouts", file=sys.stderr)
    interrupted = False

    def tick() -> None:
        bar.update(1)

    servers = {
        name: client.base_url(name)
        for name in client.global_config_dict
        if instance_section(client.global_config_dict, name) is not None
    }

    async def run() -> None:
        probe_http = HttpClient(limit=32, connect_timeout_s=5.0)
        breaker = ServerBreaker(
            health_probe(probe_http, servers), max_down_s=params.server_down_timeout_s
        )
        try:
            await collect(
                packed,
                run_url=lambda task: urls[str(task.agent_name)],
                writer=writer,
                parallel=parallel,
                timeout_s=params.rollout_timeout_s,
                summary=summary,
                on_done=tick,
                breaker=breaker,
                health_urls=[url + "/health" for url in servers.values()],
                run_batch=params.run_batch,
            )
        except* ServersDown as group:  # raised by the workers of a TaskGroup
            raise group.exceptions[0] from None
        finally:
            await probe_http.close()

    servers_down: ServersDown | None = None
    # SIGTERM stops the run as Ctrl+C does (asyncio.run cancels it on SIGINT): rows written so
    # far are whole lines, and the summary says how to resume.
    previous_term = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        asyncio.run(run(), loop_factory=uvloop.new_event_loop)
    except KeyboardInterrupt:
        interrupted = True
    except ServersDown as exc:
        interrupted = True
        servers_down = exc
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        bar.close()
        writer.close()
    print(json.dumps(summary.averages() or {"reward": None}, indent=4))
    print(f"{summary.line()} -> {output_path}")
    if not interrupted:
        print(report_metrics(client, summary, output_path, params.agent_name).text())
    if interrupted:
        missing = len(packed) - (summary.total - len(plan.kept))
        if servers_down is not None:
            print(f"Stopped: {servers_down}. {missing} rollouts were not run.")
            return 4
        print(
            f"Interrupted: {missing} rollouts were not run; add +resume=true to the same "
            "command to run them."
        )
        return 130
    if summary.statuses["failed"]:
        return 3
    return 0
