"""The ``datasets:`` entries of an agent's config: :mod:`nemo_gym.config.datasets`, where the
config checks use them, re-exported beside the dataset commands (``prepare``)."""

from nemo_gym.config.datasets import DATASET_TYPES, LICENSES, DatasetConfig, DatasetType

__all__ = ["DATASET_TYPES", "LICENSES", "DatasetConfig", "DatasetType"]
