"""The bridge to the ``reasoning-gym`` package: its registry, validated generator specs, datasets.

``app.py`` (the server: config validation and ``/verify``) and ``generate.py`` (the data CLI)
both go through this module, so a task is built the same way when it is written and when it is
scored. ``reasoning_gym`` is imported on first use, never at import time: it takes seconds and
pulls in matplotlib and sympy.

A dataset is identified by ``(name, size, seed, config)``; reasoning-gym generates entry ``i`` of
it deterministically from those, so a row only needs to carry that key and ``i``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

if TYPE_CHECKING:
    from reasoning_gym.dataset import ProceduralDataset


#: How many distinct (name, size, seed, config) datasets are kept built, least recently used out.
DATASET_CACHE_SIZE = 128
#: Keys of a generator's config dataclass that are given as ``size``/``seed``, not in ``config``.
_TOP_LEVEL_KEYS = frozenset({"size", "seed"})


def registry() -> dict[str, tuple[type, type]]:
    """reasoning-gym's generators: name -> (dataset class, config dataclass)."""
    with warnings.catch_warnings():  # a dependency (cellpylib) has `is "str"` SyntaxWarnings
        warnings.simplefilter("ignore", SyntaxWarning)
        from reasoning_gym.factory import DATASETS  # heavy: imported on first use only
    known: dict[str, tuple[type, type]] = DATASETS
    return known


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_name(name: str) -> str:
    """Return ``name`` if reasoning-gym has a generator of that name.

    Raises:
        ValueError: naming the unknown generator and the closest known one.
    """
    known = registry()
    if name not in known:
        raise ValueError(
            f"unknown reasoning-gym generator {name!r}{_suggest(name, sorted(known))}; "
            f"the {len(known)} generators are listed in reasoning_gym.factory.DATASETS"
        )
    return name


def check_config_keys(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Return ``config`` if every key is a parameter of generator ``name``.

    Raises:
        ValueError: naming the first bad key (and a close match), or ``size``/``seed`` given
            inside ``config`` instead of beside it.
    """
    config_cls = registry()[name][1]
    allowed = sorted(
        f.name for f in dataclasses.fields(config_cls) if f.name not in _TOP_LEVEL_KEYS
    )
    for key in config:
        if key in _TOP_LEVEL_KEYS:
            raise ValueError(f"{key!r} is set beside config, not inside it")
        if key not in allowed:
            raise ValueError(
                f"{name} has no parameter {key!r}{_suggest(key, allowed)}; its parameters are "
                f"{', '.join(allowed)}"
            )
    return config


def config_key(config: dict[str, Any]) -> str:
    """The canonical JSON of a generator config (the dataset cache key)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=DATASET_CACHE_SIZE)
def load_dataset(name: str, size: int, seed: int, config_json: str) -> ProceduralDataset:
    """Build (or reuse) the dataset ``name`` with this size, seed and config (canonical JSON).

    Raises:
        ValueError: the generator rejects the config values (reasoning-gym asserts on them).
    """
    registry()  # the import, quietly
    import reasoning_gym

    try:
        return reasoning_gym.create_dataset(name, size=size, seed=seed, **json.loads(config_json))
    except (AssertionError, TypeError, ValueError) as exc:  # its config checks are asserts
        raise ValueError(
            f"{name} rejects config {config_json}: {exc or type(exc).__name__}"
        ) from None


class GeneratorSpec(BaseModel):
    """One generator of the server config: which tasks ``generate.py`` writes, and how many."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """A reasoning-gym generator name, e.g. ``basic_arithmetic``."""
    size: int = Field(ge=1)
    """How many entries (rows) the dataset has."""
    seed: int
    """The dataset seed; entry ``i`` is generated from it and ``i``."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the generator's config dataclass (difficulty and such)."""

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        return check_name(value)

    @model_validator(mode="after")
    def _builds(self) -> GeneratorSpec:
        check_config_keys(self.name, self.config)
        load_dataset(self.name, self.size, self.seed, config_key(self.config))
        return self


class EntryRef(BaseModel):
    """The ``reasoning_gym`` field of a row: which generated entry the task is.

    Fields are validated in this order, so the checks of ``config`` and ``index`` can see the
    ``dataset`` and ``size`` they depend on.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str
    """The reasoning-gym generator name."""
    size: int = Field(ge=1)
    seed: int
    config: dict[str, Any] = Field(default_factory=dict)
    index: int = Field(ge=0)
    """The entry's position in the dataset, ``0 <= index < size``."""

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        return check_name(value)

    @field_validator("config")
    @classmethod
    def _known_keys(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        dataset = info.data.get("dataset")
        return check_config_keys(dataset, value) if dataset else value

    @field_validator("index")
    @classmethod
    def _in_range(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("size")
        if size is not None and value >= size:
            raise ValueError(f"index {value} is out of range for a dataset of size {size}")
        return value

    def load(self) -> ProceduralDataset:
        """The dataset this entry belongs to (cached; may take a moment the first time)."""
        return load_dataset(self.dataset, self.size, self.seed, config_key(self.config))

    def entry(self) -> dict[str, Any]:
        """The generated entry: ``question``, ``answer``, ``metadata``."""
        return dict(self.load()[self.index])
