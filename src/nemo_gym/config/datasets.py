"""One ``datasets:`` entry of a server instance, with the fields and rules NeMo Gym gives it.

An entry names a JSONL file of task rows (``jsonl_fpath``, relative to the project root), its
role (``type``: ``train``, ``validation``, ``example`` or ``benchmark``), how many times each row
is repeated (``num_repeats``), its ``license`` (required for ``train`` and ``validation``) and
where it can be downloaded from: ``source: {type: gitlab|huggingface, ...}`` or the older
``gitlab_identifier`` / ``huggingface_identifier``. Gym never downloads (it runs offline); the
identifiers are kept so that a config written for NeMo Gym loads unchanged and a missing file
can be reported with where to get it. Neighbours: ``config.instances`` validates every entry
when a config is loaded; ``datasets.prepare`` reads them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

DatasetType = Literal["train", "validation", "example", "benchmark"]
DATASET_TYPES: tuple[str, ...] = get_args(DatasetType)
License = Literal[
    "Apache 2.0",
    "MIT",
    "Creative Commons Attribution 4.0 International",
    "Creative Commons Attribution-ShareAlike 4.0 International",
    "CC BY-SA 4.0",
    "CC BY-NC 3.0",
    "NVIDIA Internal Use Only, Do Not Distribute",
    "NVIDIA Evaluation Dataset License Agreement",
    "TBD",
    "GNU General Public License v3.0",
]
LICENSES: tuple[str, ...] = get_args(License)
#: Dataset types that must name their license.
LICENSED_TYPES = ("train", "validation")


class GitlabIdentifier(BaseModel):
    """A dataset in a GitLab model registry (NeMo Gym's ``gitlab_identifier``)."""

    dataset_name: str
    version: str
    artifact_fpath: str


class HuggingFaceIdentifier(BaseModel):
    """A dataset on the Hugging Face Hub (NeMo Gym's ``huggingface_identifier``)."""

    repo_id: str
    artifact_fpath: str | None = None


class GitlabSource(GitlabIdentifier):
    type: Literal["gitlab"]


class HuggingFaceSource(HuggingFaceIdentifier):
    type: Literal["huggingface"]


DatasetSource = Annotated[GitlabSource | HuggingFaceSource, Field(discriminator="type")]


class DatasetConfig(BaseModel):
    """A dataset attached to a server instance (normally an agent)."""

    model_config = ConfigDict(extra="allow")

    name: str
    type: DatasetType
    jsonl_fpath: str
    num_repeats: int = Field(default=1, ge=1)
    source: DatasetSource | None = None
    gitlab_identifier: GitlabIdentifier | None = None
    huggingface_identifier: HuggingFaceIdentifier | None = None
    license: License | None = None
    prepare_script: str | None = Field(
        default=None, description="benchmark datasets: the script that writes jsonl_fpath."
    )
    prompt_config: str | None = Field(
        default=None, description="benchmark datasets: a prompt template applied to each row."
    )

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.type in LICENSED_TYPES and self.license is None:
            raise ValueError(
                f"dataset {self.name!r} of type {self.type} needs a `license` "
                f"(one of: {', '.join(LICENSES)})"
            )
        if self.type == "benchmark" and self.prepare_script is None:
            raise ValueError(f"benchmark dataset {self.name!r} needs a `prepare_script`")
        legacy = [
            key
            for key in ("gitlab_identifier", "huggingface_identifier")
            if getattr(self, key) is not None
        ]
        if self.source is not None and legacy:
            raise ValueError(
                f"dataset {self.name!r}: give its source once, as `source` or as {legacy[0]}"
            )
        # The two spellings mirror each other, as in NeMo Gym (both legacy ones: no `source`).
        if isinstance(self.source, GitlabSource):
            self.gitlab_identifier = GitlabIdentifier(**self.source.model_dump(exclude={"type"}))
        elif isinstance(self.source, HuggingFaceSource):
            fields = self.source.model_dump(exclude={"type"})
            self.huggingface_identifier = HuggingFaceIdentifier(**fields)
        elif legacy == ["gitlab_identifier"] and self.gitlab_identifier is not None:
            self.source = GitlabSource(type="gitlab", **self.gitlab_identifier.model_dump())
        elif legacy == ["huggingface_identifier"] and self.huggingface_identifier is not None:
            fields = self.huggingface_identifier.model_dump()
            self.source = HuggingFaceSource(type="huggingface", **fields)
        return self

    def where_to_download(self) -> str | None:
        """Where the file could be fetched from, in words (None when no source is declared)."""
        places = []
        if self.gitlab_identifier is not None:
            g = self.gitlab_identifier
            places.append(f"GitLab {g.dataset_name} {g.version} ({g.artifact_fpath})")
        if self.huggingface_identifier is not None:
            h = self.huggingface_identifier
            file = f" ({h.artifact_fpath})" if h.artifact_fpath else ""
            places.append(f"Hugging Face {h.repo_id}{file}")
        return " or ".join(places) or None

    def summary_fields(self) -> dict[str, Any]:
        """The declared fields as written at the top of its metrics file (NeMo Gym's layout)."""
        fields = self.model_dump(mode="json", exclude={"prepare_script", "prompt_config"})
        fields = {k: v for k, v in fields.items() if k in type(self).model_fields}
        if self.type == "benchmark":
            fields["prepare_script"] = self.prepare_script
            fields["prompt_config"] = self.prompt_config
        return fields
