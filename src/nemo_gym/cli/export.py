"""``ng_export``: a rollout file to a trainer's format (see ``nemo_gym.training.exports``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.core.errors import ConfigError
from nemo_gym.training.exports import FORMATS, ExportFormat, export, read_rollouts
from nemo_gym.training.samples import FailedRowPolicy

SHOWN_REJECTIONS = 10


class ExportParams(BaseModel):
    """Turn a rollout file into training data. Formats: tokens (input ids, loss mask, log-probs,
    turn spans, reward, group id), trl (prompt_ids, completion_ids, logprobs, env_mask), verl
    (prompt_ids, response_ids, response_mask, response_logprobs, reward_score, num_turns), sft
    (chat messages of rollouts with reward >= min_reward) and dpo (best vs worst rollout of each
    task). Token formats need rows collected in training mode. Rows that cannot be used are
    reported with file and line, never exported silently; failed rows are dropped unless
    +failed=score:<number> names the reward to give them.
    Example: ng_export +input_jsonl_fpath=results/r.jsonl +output_jsonl_fpath=results/trl.jsonl
    +format=trl"""

    input_jsonl_fpath: str = Field(description="Rollout file written by ng_collect_rollouts.")
    output_jsonl_fpath: str = Field(description="Where to write the records (JSONL).")
    format: ExportFormat = Field(description=f"One of: {', '.join(FORMATS)}.")
    failed: str = Field(
        default="drop", description="Failed rows: 'drop', or 'score:<number>' to train on them."
    )
    min_reward: float = Field(default=1.0, description="sft: keep rollouts with reward >= this.")


@cli_entry
def main() -> int:
    params, _ = load_params(ExportParams, "ng_export")
    try:
        policy = FailedRowPolicy.parse(params.failed)
    except ValueError as exc:
        raise ConfigError(str(exc), source="command line", key="+failed") from None
    output = Path(params.output_jsonl_fpath)
    if output.is_dir():
        raise ConfigError(
            f"{output} is a directory; name a file",
            source="command line",
            key="+output_jsonl_fpath",
        )
    records, report = export(
        read_rollouts(Path(params.input_jsonl_fpath)),
        params.format,
        failed=policy,
        min_reward=params.min_reward,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as f:
        for record in records:
            f.write(orjson.dumps(record) + b"\n")
    os.replace(partial, output)
    for reason in report.rejected[:SHOWN_REJECTIONS]:
        sys.stderr.write(f"rejected: {reason}\n")
    if len(report.rejected) > SHOWN_REJECTIONS:
        sys.stderr.write(f"... and {len(report.rejected) - SHOWN_REJECTIONS} more rejected\n")
    print(f"{params.format}: {report.line()} -> {output}")
    return 3 if report.rejected else 0
