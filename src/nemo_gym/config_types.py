"""NeMo Gym compatibility: config types under their original module name."""

from nemo_gym.config.instances import DatasetConfig, Domain, ServerRef

__all__ = ["DatasetConfig", "Domain", "ServerRef"]
