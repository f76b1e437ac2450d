"""Datasets declared in configs (``datasets:`` of an agent) and their preparation for training.

``schema`` is the ``datasets:`` entry as NeMo Gym defines it (imported by ``config.instances``);
``metrics`` summarises rows the way NeMo Gym's ``ng_prepare_data`` does; ``conflicts`` compares
a new summary with the one already on disk; ``prepare`` validates and collates the datasets of a
config (the ``ng_prepare_data`` command is ``nemo_gym.cli.prepare_data``).
"""

from nemo_gym.config.datasets import DATASET_TYPES, LICENSES, DatasetConfig, DatasetType

__all__ = ["DATASET_TYPES", "LICENSES", "DatasetConfig", "DatasetType"]
