"""``ng_prepare_data``: validate and collate the datasets declared in config files.

The work is ``nemo_gym.datasets.prepare``; this module parses the parameters (NeMo Gym's:
``+config_paths``, ``+output_dirpath``, ``+mode``, ``+should_download``, ``+data_source``,
``+overwrite_metrics_conflicts``), loads the config without needing a model (an unset
``policy_base_url`` stands for the local model, which is never started) and prints what was
written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.instances import parse_server_instances
from nemo_gym.config.loader import resolve_config
from nemo_gym.config.policy import default_policy_to_local_model
from nemo_gym.core.errors import GymError
from nemo_gym.datasets.prepare import MODE_TYPES, Mode, PrepareResult, prepare, select_datasets


class PrepareDataParams(BaseModel):
    """Validate the datasets that agents in the config files declare (datasets:), write each
    one's metrics beside it, and collate them per type into +output_dirpath: <type>.jsonl (rows
    repeated num_repeats times, tagged with agent_ref) and <type>_metrics.json.
    +mode=train_preparation takes train, validation and benchmark datasets;
    +mode=example_validation takes example datasets. Files must exist locally (no downloads)."""

    config_paths: list[str] = Field(description="YAML files declaring agents with datasets.")
    output_dirpath: str = Field(description="Folder for the collated <type>.jsonl files.")
    mode: Mode = Field(description="train_preparation or example_validation.")
    should_download: bool = Field(
        default=False,
        description="Accepted for NeMo Gym configs; Gym cannot download, so true is an error "
        "when a file is missing.",
    )
    data_source: Literal["gitlab", "huggingface"] = Field(
        default="huggingface", description="Where NeMo Gym would download from (unused)."
    )
    overwrite_metrics_conflicts: bool = Field(
        default=False,
        description="Overwrite metrics files that disagree with the data (else: an error).",
    )


def report(result: PrepareResult) -> str:
    lines = ["Datasets:"]
    lines += [f"- {d.label}: {d.path}" for d in result.datasets]
    lines.append("Metrics written:")
    lines += [f"- {p}" for p in result.metrics_files]
    if result.conflicts:
        lines.append("Metrics conflicts (overwritten):")
        lines += [f"- {p}: {'; '.join(found)}" for p, found in result.conflicts.items()]
    lines.append("View your final data!")
    lines += [f"- {kind}: {path}" for kind, path in result.outputs.items()]
    return "\n".join(lines)


@cli_entry
def main() -> int:
    params, loaded = load_params(PrepareDataParams, "ng_prepare_data")
    default_policy_to_local_model(loaded)
    instances = parse_server_instances(resolve_config(loaded), loaded, check_files=False)
    if params.should_download:
        selected = select_datasets(instances, params.mode, loaded.root)
        missing = [d for d in selected if not d.path.is_file()]
        if missing:
            names = ", ".join(f"{d.label} at {d.path}" for d in missing)
            raise GymError(
                f"+should_download=true: Gym cannot download datasets (no network access); "
                f"fetch them yourself and place them at their jsonl_fpath: {names}"
            )
    print(f"Mode {params.mode}: dataset types {', '.join(MODE_TYPES[params.mode])}", flush=True)
    result = prepare(
        instances,
        params.mode,
        Path(params.output_dirpath),
        root=loaded.root,
        overwrite_conflicts=params.overwrite_metrics_conflicts,
    )
    print(report(result))
    return 0


if __name__ == "__main__":  # python -m nemo_gym.cli.prepare_data
    main()
