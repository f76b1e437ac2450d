"""Validate and collate the datasets a config declares, as NeMo Gym's ``ng_prepare_data`` does.

The mode picks the dataset types: ``train_preparation`` takes ``train``, ``validation`` and
``benchmark``; ``example_validation`` takes ``example``. Only datasets of agent instances are
used (the agent is what serves their rows). Every file must exist locally: Gym does not
download, and a missing file is one error naming each agent, dataset and path (with the source
the config declares for it). Every row is read as ``ng_collect_rollouts`` reads input (file and
line named on the first bad row; nothing is skipped).

Written, as NeMo Gym writes them:

- beside each dataset file ``<stem>.jsonl``: ``<stem>_metrics.json`` (the dataset's declared
  fields, then its summary; see ``datasets.metrics``) and ``<stem>_prepare.jsonl`` (each row
  ``num_repeats`` times in a row, with ``agent_ref`` naming its agent);
- in the output folder, per type: ``<type>_metrics.json`` (the summary of all datasets of that
  type) and ``<type>.jsonl`` (their ``_prepare`` files concatenated, in config order).

A metrics file that already exists and disagrees with the new summary is not overwritten: a
``_conflict.json`` is written beside it and :class:`MetricsConflictError` is raised after all
datasets were checked (before collating), unless ``overwrite_conflicts`` is set. The command is
``nemo_gym.cli.prepare_data``.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nemo_gym.config.datasets import DatasetConfig
from nemo_gym.config.instances import InstanceSettings, ServerInstance
from nemo_gym.core.errors import GymError, InputDataError
from nemo_gym.core.paths import resolve_path
from nemo_gym.datasets.conflicts import check_against_existing, conflict_path
from nemo_gym.datasets.metrics import DatasetSummary
from nemo_gym.rollouts.inputs import read_rows

logger = logging.getLogger(__name__)

Mode = Literal["train_preparation", "example_validation"]
MODE_TYPES: dict[str, tuple[str, ...]] = {
    "train_preparation": ("train", "validation", "benchmark"),
    "example_validation": ("example",),
}
AGENT_TYPE = "responses_api_agents"


class MetricsConflictError(GymError):
    """Existing metrics files disagree with the data; lists each file and its differences."""


@dataclass(frozen=True)
class SelectedDataset:
    """One in-scope dataset of an agent, with its file resolved (see :func:`dataset_path`)."""

    agent: str
    config: DatasetConfig
    path: Path

    @property
    def label(self) -> str:
        return f"{self.agent} / {self.config.name} ({self.config.type})"

    def sibling(self, suffix: str) -> Path:
        return self.path.with_name(f"{self.path.stem}{suffix}")


@dataclass
class PrepareResult:
    """What a run read and wrote."""

    datasets: list[SelectedDataset]
    metrics_files: list[Path] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    conflicts: dict[Path, list[str]] = field(default_factory=dict)


def select_datasets(
    instances: list[ServerInstance], mode: Mode, root: Path | None = None
) -> list[SelectedDataset]:
    """The datasets of agent instances whose type ``mode`` takes, in config order."""
    types = MODE_TYPES[mode]
    selected = []
    for inst in instances:
        if inst.server_type != AGENT_TYPE:
            continue
        for config in InstanceSettings.model_validate(inst.settings).datasets or []:
            if config.type in types:
                path = dataset_path(config.jsonl_fpath, root)
                selected.append(SelectedDataset(inst.name, config, path))
    return selected


def dataset_path(jsonl_fpath: str, root: Path | None = None) -> Path:
    """A dataset's file: relative paths mean the current directory (as in NeMo Gym) when the
    file is there, else the project root (so commands work from any directory)."""
    here = Path(jsonl_fpath).expanduser()
    if here.is_absolute() or here.is_file():
        return here.absolute()
    return resolve_path(jsonl_fpath, root)


def check_files_exist(selected: list[SelectedDataset]) -> None:
    """Raises GymError naming every dataset whose file is missing (Gym never downloads)."""
    missing = [d for d in selected if not d.path.is_file()]
    if not missing:
        return
    lines = []
    for d in missing:
        where = d.config.where_to_download()
        origin = f"; the config names its source: {where}" if where else ""
        lines.append(f"  - {d.label}: {d.path} not found{origin}")
    raise GymError(
        f"{len(missing)} dataset file(s) missing:\n"
        + "\n".join(lines)
        + "\nGym does not download datasets (it runs offline): put each file at its jsonl_fpath"
    )


def _summarise(dataset: SelectedDataset) -> DatasetSummary:
    if dataset.config.prompt_config is not None:
        raise GymError(
            f"{dataset.label}: prompt_config is not supported by Gym's ng_prepare_data; "
            "apply the prompt when writing the JSONL file"
        )
    rows = read_rows(dataset.path)
    lines = [i for i, raw in enumerate(dataset.path.read_bytes().splitlines(), 1) if raw.strip()]
    summary = DatasetSummary()
    for line_no, row in zip(lines, rows, strict=True):
        for _ in range(dataset.config.num_repeats):
            summary.add_row(row, (str(dataset.path), line_no))
    return summary


def _write_metrics(
    metrics: dict[str, object], path: Path, result: PrepareResult, overwrite: bool
) -> bool:
    """Write ``metrics`` unless it conflicts with the file there; True when written."""
    found = check_against_existing(metrics, path)
    if found:
        result.conflicts[path] = found
        if not overwrite:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=4))
    result.metrics_files.append(path)
    return True


def _raise_conflicts(result: PrepareResult) -> None:
    parts = []
    for path, found in result.conflicts.items():
        listed = "\n".join(f"    {line}" for line in found)
        parts.append(f"  - {path} (new metrics in {conflict_path(path).name}):\n{listed}")
    raise MetricsConflictError(
        "metrics files disagree with the data:\n"
        + "\n".join(parts)
        + "\nIf the data changed on purpose, delete the stale metrics file(s) and run again, "
        "or pass +overwrite_metrics_conflicts=true"
    )


def prepare(
    instances: list[ServerInstance],
    mode: Mode,
    output_dir: Path,
    *,
    root: Path | None = None,
    overwrite_conflicts: bool = False,
) -> PrepareResult:
    """Validate, summarise and collate the in-scope datasets (see the module docstring).

    Raises:
        GymError: no dataset in scope, or a dataset file is missing.
        InputDataError: a row is malformed (file and line named).
        MetricsConflictError: an existing metrics file disagrees (unless ``overwrite_conflicts``).
    """
    selected = select_datasets(instances, mode, root)
    if not selected:
        wanted = ", ".join(MODE_TYPES[mode])
        raise GymError(
            f"no agent in the config declares a dataset of type {wanted} (+mode={mode}); "
            "add one under the agent's `datasets:`"
        )
    check_files_exist(selected)
    result = PrepareResult(selected)
    per_type: dict[str, DatasetSummary] = {}
    for dataset in selected:
        summary = _summarise(dataset)
        logger.info("%s: %d examples", dataset.path, summary.examples)
        per_type.setdefault(dataset.config.type, DatasetSummary()).merge(
            summary, f"{dataset.config.type} datasets"
        )
        metrics = dataset.config.summary_fields() | summary.to_json()
        _write_metrics(metrics, dataset.sibling("_metrics.json"), result, overwrite_conflicts)
    if result.conflicts and not overwrite_conflicts:
        _raise_conflicts(result)
    output_dir.mkdir(parents=True, exist_ok=True)
    for kind in MODE_TYPES[mode]:
        if kind not in per_type:
            continue
        metrics_path = output_dir / f"{kind}_metrics.json"
        if not _write_metrics(per_type[kind].to_json(), metrics_path, result, overwrite_conflicts):
            continue
        collated = output_dir / f"{kind}.jsonl"
        with collated.open("wb") as out:
            for dataset in selected:
                if dataset.config.type != kind:
                    continue
                prepared = _write_prepared(dataset, read_rows(dataset.path))
                with prepared.open("rb") as src:
                    shutil.copyfileobj(src, out)
        result.outputs[kind] = collated
    if result.conflicts and not overwrite_conflicts:
        _raise_conflicts(result)
    return result


def _write_prepared(dataset: SelectedDataset, rows: list[dict[str, Any]]) -> Path:
    """``<stem>_prepare.jsonl``: each row repeated, tagged with the agent that serves it."""
    path = dataset.sibling("_prepare.jsonl")
    agent_ref = {"type": AGENT_TYPE, "name": dataset.agent}
    try:
        with path.open("w") as out:
            for row in rows:
                line = json.dumps({**row, "agent_ref": agent_ref})
                out.write(f"{line}\n" * dataset.config.num_repeats)
    except OSError as exc:
        raise InputDataError(str(path), None, f"cannot be written ({exc.strerror})") from None
    return path
